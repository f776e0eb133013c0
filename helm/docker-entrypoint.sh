#!/usr/bin/env bash
# Entrypoint of the Granero image.
#
# Spark on Kubernetes starts driver and executor pods from this image with the first
# argument `driver` or `executor` and the rest in environment variables set by Spark
# (SPARK_DRIVER_BIND_ADDRESS, SPARK_DRIVER_URL, SPARK_EXECUTOR_*, ...). Anything else is
# run as given, so `granero serve ...` and `spark-submit ...` work unchanged.
set -euo pipefail

spark_home="${SPARK_HOME:?SPARK_HOME must be set by the image}"

# spark-defaults.conf points spark.jars.ivy at GRANERO_IVY_DIR; seed it from the read-only copy
# made at build time so Delta's jars resolve offline. Not fatal: the server needs no Spark.
if [[ -n "${GRANERO_IVY_SEED:-}" && -n "${GRANERO_IVY_DIR:-}" && ! -e "$GRANERO_IVY_DIR" ]]; then
    cp -R "$GRANERO_IVY_SEED" "$GRANERO_IVY_DIR" 2>/dev/null ||
        echo "granero-entrypoint: cannot seed $GRANERO_IVY_DIR; Spark may need network to resolve jars" >&2
fi

# Spark passes JVM options for executors as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ...
java_opts=()
while IFS='=' read -r _ value; do
    java_opts+=("$value")
done < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n)

case "${1:-}" in
    driver)
        shift
        exec "$spark_home/bin/spark-submit" \
            --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:?}" \
            --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}" \
            --deploy-mode client \
            "$@"
        ;;
    executor)
        shift
        classpath="$spark_home/jars/*"
        [[ -n "${SPARK_CLASSPATH:-}" ]] && classpath="$SPARK_CLASSPATH:$classpath"
        exec java "${java_opts[@]}" \
            "-Xms${SPARK_EXECUTOR_MEMORY:?}" "-Xmx${SPARK_EXECUTOR_MEMORY}" \
            -cp "$classpath" \
            org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
            --driver-url "${SPARK_DRIVER_URL:?}" \
            --executor-id "${SPARK_EXECUTOR_ID:?}" \
            --cores "${SPARK_EXECUTOR_CORES:?}" \
            --app-id "${SPARK_APPLICATION_ID:?}" \
            --hostname "${SPARK_EXECUTOR_POD_IP:?}" \
            --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
            --podName "${SPARK_EXECUTOR_POD_NAME:?}" \
            "$@"
        ;;
    *)
        exec "$@"
        ;;
esac

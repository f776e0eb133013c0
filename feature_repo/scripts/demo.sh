#!/usr/bin/env bash
# The quickstart's main job, end to end on the embedded defaults (local Spark, Delta tables, a
# private Redis started by Granero): generate data -> apply -> materialize (+ sync to Redis) ->
# serve over gRPC -> online lookup -> training set -> verify. Run it as `make demo`.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
REPO=feature_repo
export GRANERO_REPO=$REPO
PORT=${GRANERO_DEMO_PORT:-6566}
STARTED=$SECONDS
LAST=
# Each step ends with how long it took, so a slow step is easy to spot.
step() {
  if [[ -n $LAST ]]; then printf '   (%ss)\n' $((SECONDS - LAST)); fi
  LAST=$SECONDS
  printf '\n\033[1;36m== %s\033[0m\n' "$*"
}

step "1/7 generate the example source data (seeded)"
"$BIN/python" $REPO/scripts/generate_data.py --out $REPO/data

step "2/7 plan and apply the definitions"
"$BIN/granero" plan
"$BIN/granero" apply
"$BIN/granero" list views
# trips.py's aggregate view: what each served feature computes, its hop and event columns (the
# definition's JSON that follows is cut here)
"$BIN/granero" describe driver_trips | sed '/^{/,$d'

step "3/7 materialize every view into Delta and sync the latest values (and aggregate tiles) to Redis"
"$BIN/granero" materialize-incremental

step "4/7 serve over gRPC on 127.0.0.1:$PORT"
"$BIN/granero" serve --host 127.0.0.1 --port "$PORT" > $REPO/data/serve.log 2>&1 &
SERVER=$!
cleanup() { kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; "$BIN/granero" online stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
"$BIN/python" - "$PORT" <<'PY'
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
channel = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
grpc.channel_ready_future(channel).result(timeout=60)
status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(status))
PY

step "5/7 online lookup over gRPC (feature service trip_eta_model)"
"$BIN/granero" get-online --target "127.0.0.1:$PORT" --service trip_eta_model \
  --entity driver_id=1001,customer_id=2001,pickup_zone=1,dropoff_zone=2 \
  --entity driver_id=9999,customer_id=2002,pickup_zone=3,dropoff_zone=4
# on-demand features (dispatch.py) over gRPC: the request carries the pickup and driver positions
"$BIN/granero" get-online --target "127.0.0.1:$PORT" --service dispatch_model --entity driver_id=1001 \
  --request pickup_lat=52.52,pickup_lon=13.405,driver_lat=52.50,driver_lon=13.45

step "6/7 build a point-in-time-correct training set (in process: small enough to need no Spark job)"
"$BIN/granero" historical --entities $REPO/data/trips.parquet --service trip_eta_model \
  --out $REPO/data/training_set --overwrite
"$BIN/python" - "$REPO/data/training_set" <<'PY'
import sys, pandas as pd
df = pd.read_parquet(sys.argv[1])
windowed = [c for c in df.columns if c.startswith("driver_trips__")]  # trips.py: aggregates at each row's time
print(df.shape)
print(df.drop(columns=windowed).head(5).to_string())
print(df[["driver_id", "event_timestamp", *windowed]].head(5).to_string())
PY
# on-demand features (dispatch.py): computed per trip from its request columns (pickup and driver
# coordinates in trips.parquet) and the driver's point-in-time acc_rate, by the serving function
"$BIN/granero" historical --entities $REPO/data/trips.parquet --service dispatch_model \
  --out $REPO/data/dispatch_training_set --overwrite
"$BIN/python" -c "import pandas as pd; df = pd.read_parquet('$REPO/data/dispatch_training_set'); print(df.iloc[:5, -4:].to_string())"

step "7/7 verify: online values equal the offline point-in-time values (every entity, in process)"
"$BIN/granero" verify

# push (README "Push"): a value written by the caller is served at once; it is landed offline and
# reaches training with the next materialization of its window (after verify, which compares
# Redis with the offline tables)
step "push: driver 1001's conv_rate pushed over gRPC, then served at once"
"$BIN/python" - "$REPO/data/push_rows.json" <<'PY'
import json, sys
from datetime import UTC, datetime
now = datetime.now(UTC).isoformat()
row = {"driver_id": 1001, "event_timestamp": now, "conv_rate": 0.999, "acc_rate": 0.95,
       "avg_daily_trips": 30, "trips_per_hour": 1.25, "is_reliable": True}
json.dump([row], open(sys.argv[1], "w"))
PY
"$BIN/granero" push driver_hourly_stats --file $REPO/data/push_rows.json --target "127.0.0.1:$PORT"
"$BIN/granero" get-online --target "127.0.0.1:$PORT" --features driver_hourly_stats:conv_rate \
  --entity driver_id=1001

# freshness (README "Freshness"): each view's newest event time online and its age, its last
# materialization and any window waiting to be synced
step "status: freshness of every view"
"$BIN/granero" status

# online data of removed views (README CLI): `apply` drops a removed view's keys; what an apply
# could not reach (Redis down) is found here; --dry-run only lists it
step "online prune: views with online data but no registered definition (dry run)"
"$BIN/granero" online prune --dry-run

# late data (README "Incremental runs and late data"): a row appended to a Delta source inside a
# day already materialized reaches serving and training via `granero materialize-incremental`
step "late data: a late Delta row, re-materialized by the next incremental run (one process)"
"$BIN/python" $REPO/scripts/late_data_demo.py --out $REPO/data/late_demo

# streaming (README "Streaming"): a local single-node Kafka broker (the jars `make setup` fetched)
# is started and stopped by the script; `granero stream --available-now` runs in process once
step "stream: events produced to a local Kafka broker, served online and stored offline (one process)"
"$BIN/python" $REPO/scripts/stream_demo.py --out $REPO/data/stream_demo
printf '   (%ss)\n' $((SECONDS - LAST))
echo
echo "demo finished in $((SECONDS - STARTED))s: training set in $REPO/data/training_set, server log in $REPO/data/serve.log"

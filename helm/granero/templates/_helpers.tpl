{{/* Names and labels. */}}

{{- define "granero.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "granero.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A name derived from the full name: (list $ "suffix"). Kept short for CronJob's 52 chars. */}}
{{- define "granero.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "granero.fullname" $root | trunc (int (sub 51 (len (index . 1)))) | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "granero.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "granero.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: granero
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (list $ "server"). */}}
{{- define "granero.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "granero.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "granero.componentLabels" -}}
{{ include "granero.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "granero.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "granero.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "granero.sparkServiceAccountName" -}}
{{- $sa := .Values.spark.kubernetes.serviceAccount }}
{{- if $sa.create }}
{{- default (include "granero.componentName" (list . "spark")) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{- define "granero.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "granero.configMapName" -}}
{{- include "granero.componentName" (list . "config") }}
{{- end }}

{{/* The Secret holding the Redis password, or "" when Redis needs none. */}}
{{- define "granero.redisSecretName" -}}
{{- $auth := .Values.onlineStore.auth }}
{{- if $auth.existingSecret }}
{{- $auth.existingSecret }}
{{- else if $auth.password }}
{{- include "granero.componentName" (list . "redis") }}
{{- end }}
{{- end }}

{{- define "granero.redisSecretKey" -}}
{{- if .Values.onlineStore.auth.existingSecret }}
{{- .Values.onlineStore.auth.existingSecretPasswordKey }}
{{- else }}
{{- "redis-password" }}
{{- end }}
{{- end }}

{{- define "granero.sharedClaimName" -}}
{{- default (include "granero.componentName" (list . "data")) .Values.sharedStorage.existingClaim }}
{{- end }}

{{/* feature_store.yaml; Spark conf values are strings in Granero's config model. */}}
{{- define "granero.featureStoreYaml" -}}
{{- $fs := .Values.featureStore }}
{{- $redis := .Values.onlineStore.redis }}
{{- $sparkConf := dict }}
{{- range $key, $value := .Values.spark.conf }}
{{- $_ := set $sparkConf $key (toString $value) }}
{{- end }}
{{- $config := dict
  "project" $fs.project
  "registry" (dict "path" $fs.registry.path)
  "offline_store" (dict "type" $fs.offlineStore.type "path" $fs.offlineStore.path)
  "online_store" (dict "type" .Values.onlineStore.type "url" $redis.url "cluster" $redis.cluster
                       "socket_timeout_seconds" $redis.socketTimeoutSeconds)
  "spark" (dict "master" (include "granero.sparkMaster" .) "app_name" (include "granero.componentName" (list . "materialize")) "conf" $sparkConf)
  "serving" (dict "host" "0.0.0.0" "port" .Values.server.port "metrics_port" .Values.server.metricsPort
                  "limits" (dict "max_batch_size" .Values.featureStore.serving.maxBatchSize)
                  "max_workers" .Values.featureStore.serving.maxWorkers
                  "drain_seconds" .Values.server.drainSeconds
                  "health_port" .Values.server.healthPort)
}}
{{- $tls := .Values.server.tls }}
{{- if $tls.enabled }}
{{- $files := dict "cert_file" "/etc/granero/tls/tls.crt" "key_file" "/etc/granero/tls/tls.key" }}
{{- if $tls.clientCA.secretName }}
{{- $_ := set $files "client_ca_file" "/etc/granero/client-ca/ca.crt" }}
{{- end }}
{{- $_ := set $config.serving "tls" $files }}
{{- else }}
{{- $_ := set $config.serving "insecure" .Values.server.insecure }}
{{- end }}
{{- $_ := set $config "access" (include "granero.accessConfig" . | fromYaml) }}
{{- with .Values.stream }}{{- if .enabled }}
{{- $_ := set $config "streaming" (dict "checkpoint_location" .checkpointLocation
      "dead_letter_location" .deadLetterLocation "trigger_interval" .triggerInterval
      "offline_trigger_interval" .offlineTriggerInterval) }}
{{- end }}{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* feature_store.yaml access: the files are the Secrets mounted by granero.accessVolumes. */}}
{{- define "granero.accessConfig" -}}
{{- $access := .Values.server.access }}
{{- $backends := list }}
{{- if $access.tokens.secretName }}
{{- $backends = append $backends (dict "type" "tokens" "file" "/etc/granero/access/tokens/tokens.yaml") }}
{{- end }}
{{- if $access.jwt.secretName }}
{{- $jwt := dict "type" "jwt" "keys_file" "/etc/granero/access/jwt/keys" "audience" $access.jwt.audience }}
{{- if $access.jwt.issuer }}
{{- $_ := set $jwt "issuer" $access.jwt.issuer }}
{{- end }}
{{- $backends = append $backends $jwt }}
{{- end }}
{{- if .Values.server.tls.clientCA.secretName }}
{{- $backends = append $backends (dict "type" "mtls" "roles" $access.mtlsRoles) }}
{{- end }}
{{- $config := dict "authentication" $backends "deny_by_default" $access.denyByDefault }}
{{- if $access.auditLog.enabled }}
{{- $_ := set $config "audit_log" "/var/log/granero/audit.jsonl" }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* The server's access Secrets, mounted as directories (a rotated Secret reaches the files),
and the audit log's emptyDir. */}}
{{- define "granero.accessVolumes" -}}
{{- $access := .Values.server.access }}
{{- if $access.tokens.secretName }}
- name: access-tokens
  secret:
    secretName: {{ $access.tokens.secretName }}
    items:
      - key: {{ $access.tokens.key }}
        path: tokens.yaml
{{- end }}
{{- if $access.jwt.secretName }}
- name: access-jwt
  secret:
    secretName: {{ $access.jwt.secretName }}
    items:
      - key: {{ $access.jwt.key }}
        path: keys
{{- end }}
{{- if $access.auditLog.enabled }}
- name: audit
  emptyDir:
    sizeLimit: {{ $access.auditLog.sizeLimit }}
{{- end }}
{{- end }}

{{- define "granero.accessVolumeMounts" -}}
{{- $access := .Values.server.access }}
{{- if $access.tokens.secretName }}
- name: access-tokens
  mountPath: /etc/granero/access/tokens
  readOnly: true
{{- end }}
{{- if $access.jwt.secretName }}
- name: access-jwt
  mountPath: /etc/granero/access/jwt
  readOnly: true
{{- end }}
{{- if $access.auditLog.enabled }}
- name: audit
  mountPath: /var/log/granero
{{- end }}
{{- end }}

{{- define "granero.tlsSecretName" -}}
{{- default (include "granero.componentName" (list . "tls")) .Values.server.tls.secretName }}
{{- end }}

{{/* The server's certificate Secrets, mounted as directories: files in a subPath mount would
never see a renewal. */}}
{{- define "granero.tlsVolumes" -}}
{{- $tls := .Values.server.tls }}
{{- if $tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "granero.tlsSecretName" . }}
{{- if $tls.clientCA.secretName }}
- name: client-ca
  secret:
    secretName: {{ $tls.clientCA.secretName }}
    items:
      - key: {{ $tls.clientCA.key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "granero.tlsVolumeMounts" -}}
{{- $tls := .Values.server.tls }}
{{- if $tls.enabled }}
- name: tls
  mountPath: /etc/granero/tls
  readOnly: true
{{- if $tls.clientCA.secretName }}
- name: client-ca
  mountPath: /etc/granero/client-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/* The master every Spark entry point agrees on, whichever way the job is started. */}}
{{- define "granero.sparkMaster" -}}
{{- $spark := .Values.spark }}
{{- if eq $spark.mode "kubernetes" }}
{{- printf "k8s://%s" $spark.kubernetes.apiServer }}
{{- else if eq $spark.mode "standalone" }}
{{- $spark.standalone.masterUrl }}
{{- else }}
{{- $spark.local.master }}
{{- end }}
{{- end }}

{{/* Checksum that rolls pods when what they read at start changes. */}}
{{- define "granero.configChecksum" -}}
{{- list (include "granero.featureStoreYaml" .) .Values.onlineStore.auth | toJson | sha256sum }}
{{- end }}

{{/*
Cross-field rules JSON schema cannot express well. Rendered once from the ConfigMap template,
so a violation fails `helm template` / `helm install` with a message naming the values.
*/}}
{{- define "granero.validate" -}}
{{- $server := .Values.server }}
{{- if le (int $server.terminationGracePeriodSeconds) (int (add $server.preStopSleepSeconds $server.drainSeconds)) }}
{{- fail (printf "server.terminationGracePeriodSeconds (%v) must exceed server.preStopSleepSeconds + server.drainSeconds (%v)" $server.terminationGracePeriodSeconds (add $server.preStopSleepSeconds $server.drainSeconds)) }}
{{- end }}
{{- if and (contains "${REDIS_PASSWORD}" .Values.onlineStore.redis.url) (not (include "granero.redisSecretName" .)) }}
{{- fail "onlineStore.redis.url references ${REDIS_PASSWORD}: set onlineStore.auth.existingSecret (or onlineStore.auth.password)" }}
{{- end }}
{{- if and .Values.featureRepo.mountFromConfigMap .Values.featureRepo.existingClaim }}
{{- fail "featureRepo: set mountFromConfigMap or existingClaim, not both" }}
{{- end }}
{{- if and (eq .Values.spark.mode "standalone") (not .Values.spark.standalone.masterUrl) }}
{{- fail "spark.mode is standalone: set spark.standalone.masterUrl (spark://host:7077)" }}
{{- end }}
{{- if and $server.autoscaling.enabled (gt (int $server.autoscaling.minReplicas) (int $server.autoscaling.maxReplicas)) }}
{{- fail "server.autoscaling.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- if and (not $server.tls.enabled) (not $server.insecure) }}
{{- fail "server.tls.enabled is false, so the server would speak plain text on the pod network: set server.insecure=true to do that on purpose, or enable TLS" }}
{{- end }}
{{- if and (not $server.tls.enabled) $server.tls.clientCA.secretName }}
{{- fail "server.tls.clientCA needs TLS: set server.tls.enabled=true" }}
{{- end }}
{{- if and $server.access.jwt.secretName (not $server.access.jwt.audience) }}
{{- fail "server.access.jwt.secretName is set: set server.access.jwt.audience (the aud the server accepts)" }}
{{- end }}
{{- if has (int $server.healthPort) (list (int $server.port) (int $server.metricsPort)) }}
{{- fail "server.healthPort must differ from server.port and server.metricsPort" }}
{{- end }}
{{- end }}

{{/* Pod-level pieces shared by the server, the jobs and Spark's pod templates. */}}

{{- define "granero.volumes" -}}
{{- include "granero.volumesWithConfig" (list . (include "granero.configMapName" .)) }}
{{- end }}

{{/* (list $ configMapName): the registry-apply hook mounts its own copy of the config. */}}
{{- define "granero.volumesWithConfig" -}}
{{- $configMap := index . 1 }}
{{- with index . 0 -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.featureRepo.mountFromConfigMap }}
- name: repo
  projected:
    sources:
      - configMap:
          name: {{ .Values.featureRepo.mountFromConfigMap }}
      - configMap:
          name: {{ $configMap }}
          items:
            - key: feature_store.yaml
              path: feature_store.yaml
{{- else }}
- name: config
  configMap:
    name: {{ $configMap }}
{{- if .Values.featureRepo.existingClaim }}
- name: repo
  persistentVolumeClaim:
    claimName: {{ .Values.featureRepo.existingClaim }}
    readOnly: true
{{- end }}
{{- end }}
{{- if .Values.sharedStorage.enabled }}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "granero.sharedClaimName" . }}
{{- end }}
{{- end }}
{{- end }}

{{- define "granero.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.featureRepo.mountFromConfigMap }}
- name: repo
  mountPath: /repo
  readOnly: true
{{- else }}
{{- if .Values.featureRepo.existingClaim }}
- name: repo
  mountPath: /repo
  readOnly: true
  {{- with .Values.featureRepo.subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end }}
- name: config
  mountPath: /repo/feature_store.yaml
  subPath: feature_store.yaml
  readOnly: true
{{- end }}
{{- if .Values.sharedStorage.enabled }}
- name: data
  mountPath: {{ .Values.sharedStorage.mountPath }}
{{- end }}
{{- end }}

{{- define "granero.env" -}}
{{- $secret := include "granero.redisSecretName" . }}
{{- if $secret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ include "granero.redisSecretKey" . }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

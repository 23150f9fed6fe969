{{/*
Names are pinned to the release, never to the chart name, so they read the same
whether the chart is installed alone or as the umbrella's subchart. 52 characters
leave room for the "-N" pod ordinal and the controller-revision-hash label.
*/}}
{{- define "etcd.fullname" -}}
{{- printf "%s-etcd" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "etcd.headlessName" -}}
{{- printf "%s-headless" (include "etcd.fullname" .) -}}
{{- end -}}

{{/* Selector labels: only labels that never change over the release's life. */}}
{{- define "etcd.selectorLabels" -}}
app.kubernetes.io/name: etcd
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels are merged as maps, so no key can appear twice: the chart's labels, then
global.commonLabels and commonLabels (and podLabels on the pods), then the selector
labels, which nothing overrides. "extra" is a map of more labels (podLabels).
*/}}
{{- define "etcd.mergedLabels" -}}
{{- $root := .root -}}
{{- $labels := dict "app.kubernetes.io/component" "database" "app.kubernetes.io/part-of" "hashstack" "app.kubernetes.io/managed-by" $root.Release.Service -}}
{{- range list (($root.Values.global).commonLabels) $root.Values.commonLabels .extra -}}
{{- $labels = mergeOverwrite $labels (deepCopy (default dict .)) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $labels (include "etcd.selectorLabels" $root | fromYaml)) -}}
{{- end -}}

{{/* Labels of every object: the merged labels plus the chart and app versions. */}}
{{- define "etcd.labels" -}}
{{- $labels := include "etcd.mergedLabels" (dict "root" .) | fromYaml -}}
{{- $_ := set $labels "app.kubernetes.io/version" (.Chart.AppVersion | toString) -}}
{{- $_ = set $labels "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-") -}}
{{- toYaml $labels -}}
{{- end -}}

{{/*
Labels of the backup claim: its own name and component, so no selector of the members'
volumes (app.kubernetes.io/name=etcd) can reach the snapshots.
*/}}
{{- define "etcd.backupLabels" -}}
{{- $labels := include "etcd.labels" . | fromYaml -}}
{{- toYaml (mergeOverwrite $labels (include "etcd.backupSelectorLabels" . | fromYaml) (dict "app.kubernetes.io/component" "backup")) -}}
{{- end -}}

{{- define "etcd.backupSelectorLabels" -}}
app.kubernetes.io/name: etcd-backup
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the helm-test pod: its own name label, the rest as every object's. */}}
{{- define "etcd.testLabels" -}}
{{- $labels := include "etcd.labels" . | fromYaml -}}
{{- toYaml (mergeOverwrite $labels (include "etcd.testSelectorLabels" . | fromYaml) (dict "app.kubernetes.io/component" "test")) -}}
{{- end -}}

{{/*
Labels of the pod template: no chart or app version, so a chart bump does not restart
the members (with one member that is an outage).
*/}}
{{- define "etcd.podLabels" -}}
{{- include "etcd.mergedLabels" (dict "root" . "extra" .Values.podLabels) -}}
{{- end -}}

{{/*
Pods of the release carrying this label may reach the client port: the umbrella chart
puts it on persistence, so persistence keeps its path to etcd whichever chart's
NetworkPolicies are on.
*/}}
{{- define "etcd.clientSelectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
hashstack/etcd-client: "true"
{{- end -}}

{{/* The helm-test pod gets its own name label so no etcd selector ever matches it. */}}
{{- define "etcd.testSelectorLabels" -}}
app.kubernetes.io/name: etcd-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* [registry/]repository[:tag][@digest]; global.imageRegistry overrides the registry. */}}
{{- define "etcd.image" -}}
{{- $img := .Values.image -}}
{{- $registry := default $img.registry ((.Values.global).imageRegistry) -}}
{{- $ref := $img.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ end -}}
{{- if $img.tag }}{{ $ref = printf "%s:%s" $ref $img.tag }}{{ end -}}
{{- if $img.digest }}{{ $ref = printf "%s@%s" $ref $img.digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{/* global.imagePullSecrets and the chart's own, each name once (server-side apply refuses repeats). */}}
{{- define "etcd.imagePullSecrets" -}}
{{- $names := list -}}
{{- range concat (default list ((.Values.global).imagePullSecrets)) .Values.imagePullSecrets -}}
{{- if kindIs "string" . }}{{ $names = append $names . }}{{ else }}{{ $names = append $names .name }}{{ end -}}
{{- end -}}
{{- with uniq $names }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Variables the StatefulSet sets itself; extraEnv may not repeat them (a list with a repeated name is refused by server-side apply). */}}
{{- define "etcd.chartEnvNames" -}}
{{- list "POD_NAME" "ETCD_NAME" "ETCD_DATA_DIR" "ETCD_LISTEN_PEER_URLS" "ETCD_LISTEN_CLIENT_URLS" "ETCD_LISTEN_METRICS_URLS" "ETCD_INITIAL_ADVERTISE_PEER_URLS" "ETCD_ADVERTISE_CLIENT_URLS" "ETCD_INITIAL_CLUSTER_TOKEN" "CLUSTER_ENDPOINTS" "MEMBER_PEER_URL_PATTERN" "SIZE_KEY" "CLUSTER_STATE" "BOOTSTRAP_MEMBERS" "MEMBER_LOBBY_URL_PATTERN" "LOBBY_LISTEN_CLIENT_URL" "LOBBY_PEER_URL" "LOBBY_DATA_DIR" "ETCD_AUTO_COMPACTION_MODE" "ETCD_AUTO_COMPACTION_RETENTION" "ETCD_QUOTA_BACKEND_BYTES" "ETCD_SNAPSHOT_COUNT" "ETCD_CERT_FILE" "ETCD_KEY_FILE" "ETCD_TRUSTED_CA_FILE" "ETCD_CLIENT_CERT_AUTH" "ETCDCTL_CACERT" "ETCDCTL_CERT" "ETCDCTL_KEY" | toJson -}}
{{- end -}}

{{/* extraEnv, refused when it repeats a name (its own or one the chart sets). */}}
{{- define "etcd.extraEnv" -}}
{{- $taken := include "etcd.chartEnvNames" . | fromJsonArray -}}
{{- range .Values.extraEnv -}}
{{- if has .name $taken -}}
{{- fail (printf "etcd.extraEnv: %s is set twice (the chart sets it from a value, or extraEnv repeats it); use the value or name it once" .name) -}}
{{- end -}}
{{- $taken = append $taken .name -}}
{{- end -}}
{{- with .Values.extraEnv }}
{{- toYaml . }}
{{- end -}}
{{- end -}}

{{/*
The one NetworkPolicy switch: global.networkPolicy.enabled when the umbrella (or the
user) sets it, else networkPolicy.enabled. "true" or "".
*/}}
{{- define "etcd.networkPolicyEnabled" -}}
{{- $global := dig "networkPolicy" "enabled" nil (default dict .Values.global) -}}
{{- if kindIs "bool" $global -}}
{{- if $global }}true{{ end -}}
{{- else if .Values.networkPolicy.enabled -}}
true
{{- end -}}
{{- end -}}

{{- define "etcd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ include "etcd.fullname" . }}{{ else }}{{ default "default" .Values.serviceAccount.name }}{{ end -}}
{{- end -}}

{{/* The TLS Secret as a pod volume, and its mount (with tls.enabled). */}}
{{- define "etcd.tlsVolume" -}}
- name: tls
  secret:
    secretName: {{ required "etcd.tls.existingSecret is required when etcd.tls.enabled is true" .Values.tls.existingSecret }}
    defaultMode: 0440
{{- end -}}

{{- define "etcd.tlsVolumeMount" -}}
- name: tls
  mountPath: /etc/etcd/tls
  readOnly: true
{{- end -}}

{{- define "etcd.clientScheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/* A member's DNS name, <pod>.<headless>.<namespace>.svc.<clusterDomain>, for the pod name
`pod` (which may be a placeholder the container fills in). */}}
{{- define "etcd.memberHost" -}}
{{- printf "%s.%s.%s.svc.%s" .pod (include "etcd.headlessName" .root) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/*
A member's peer URL with @NAME@ for its pod name: the entrypoint builds the first install's
member list from it, and the resize hook the list of members to keep. Nothing in the pod
template depends on replicaCount, so scaling never restarts a running member.
*/}}
{{- define "etcd.peerURLPattern" -}}
{{- printf "http://%s:2380" (include "etcd.memberHost" (dict "root" . "pod" "@NAME@")) -}}
{{- end -}}

{{/* A member's lobby URL with @NAME@ for its pod name: a member without data waiting to
bootstrap answers there (files/entrypoint.sh). */}}
{{- define "etcd.lobbyURLPattern" -}}
{{- printf "http://%s:%d" (include "etcd.memberHost" (dict "root" . "pod" "@NAME@")) (include "etcd.lobbyPort" . | int) -}}
{{- end -}}

{{/* The lobby's client port; its peer port (2383) listens on the pod's loopback only. */}}
{{- define "etcd.lobbyPort" -}}
2382
{{- end -}}

{{/* Ordinals a member can have (replicaCount's largest allowed value, values.schema.json). */}}
{{- define "etcd.maxMembers" -}}
5
{{- end -}}

{{/*
ServiceAccount of the pre-upgrade hook: under Argo CD it runs (PreSync) before the chart's
own ServiceAccount exists, so it takes the namespace's default one when the chart creates
its own (it needs no API access; no token is mounted), else the one named.
*/}}
{{- define "etcd.hookServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}default{{ else }}{{ include "etcd.serviceAccountName" . }}{{ end -}}
{{- end -}}

{{/* The client Service: it reaches the ready (voting, healthy) members only. */}}
{{- define "etcd.clientURL" -}}
{{- printf "%s://%s.%s.svc.%s:2379" (include "etcd.clientScheme" .) (include "etcd.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* Key in etcd where the resize hook records the member count the release wants. */}}
{{- define "etcd.sizeKey" -}}
/hashstack-etcd/members
{{- end -}}

{{/* ConfigMap read at container start: the cluster state (auto, new, existing) and size. */}}
{{- define "etcd.clusterConfigName" -}}
{{- printf "%s-cluster" (include "etcd.fullname" .) -}}
{{- end -}}

{{/* The chart's own etcdctl jobs (resize hook, backup, defrag); never matched by etcd's selector. */}}
{{- define "etcd.jobSelectorLabels" -}}
app.kubernetes.io/name: etcd-job
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
A CronJob of the chart's etcdctl jobs. Parameters: root, component, schedule, and pod (the
parameters of etcd.jobPodTemplate).
*/}}
{{- define "etcd.cronJob" -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "etcd.fullname" .root }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "etcd.labels" .root | nindent 4 }}
spec:
  schedule: {{ .schedule | quote }}
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 1
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      backoffLimit: 2
      template:
        {{- include "etcd.jobPodTemplate" .pod | nindent 8 }}
{{- end -}}

{{/*
Pod template of the chart's etcdctl jobs. Parameters: root, component, script (run by the
image's /bin/sh), env (list), volumes and volumeMounts (lists, optional), serviceAccountName
(optional; the chart's by default).
*/}}
{{- define "etcd.jobPodTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- $labels := include "etcd.mergedLabels" (dict "root" $root) | fromYaml }}
    {{- toYaml (mergeOverwrite $labels (include "etcd.jobSelectorLabels" $root | fromYaml) (dict "app.kubernetes.io/component" .component)) | nindent 4 }}
  {{- with $root.Values.jobs.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ .serviceAccountName | default (include "etcd.serviceAccountName" $root) }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with include "etcd.imagePullSecrets" $root | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  securityContext:
    {{- include "etcd.podSecurityContext" $root | nindent 4 }}
  containers:
    - name: {{ .component }}
      image: {{ include "etcd.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: ["/bin/sh", "-c", {{ .script | quote }}, {{ .component | quote }}]
      env:
        - name: CLUSTER_ENDPOINTS
          value: {{ include "etcd.clientURL" $root | quote }}
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- include "etcd.etcdctlTLSEnv" $root | trim | nindent 8 }}
      resources:
        {{- toYaml $root.Values.jobs.resources | nindent 8 }}
      securityContext:
        {{- include "etcd.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        # bash writes here-documents to /tmp; the root filesystem is read-only.
        - name: tmp
          mountPath: /tmp
        {{- if $root.Values.tls.enabled }}
        {{- include "etcd.tlsVolumeMount" $root | nindent 8 }}
        {{- end }}
        {{- with .volumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
    {{- if $root.Values.tls.enabled }}
    {{- include "etcd.tlsVolume" $root | nindent 4 }}
    {{- end }}
    {{- with .volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* etcdctl reads ETCDCTL_*; the server reads ETCD_*, so the two never collide. */}}
{{- define "etcd.etcdctlTLSEnv" -}}
{{- if .Values.tls.enabled }}
- name: ETCDCTL_CACERT
  value: /etc/etcd/tls/ca.crt
{{- if .Values.tls.clientCertAuth }}
- name: ETCDCTL_CERT
  value: /etc/etcd/tls/tls.crt
- name: ETCDCTL_KEY
  value: /etc/etcd/tls/tls.key
{{- end }}
{{- end }}
{{- end -}}

{{- define "etcd.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "etcd.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The volume snapshots go to: backup.volume as given, else a PVC (the user's or the chart's). */}}
{{- define "etcd.backupVolume" -}}
{{- if .Values.backup.volume -}}
{{- toYaml (merge (dict "name" "backup") .Values.backup.volume) -}}
{{- else -}}
name: backup
persistentVolumeClaim:
  claimName: {{ default (printf "%s-backup" (include "etcd.fullname" .)) .Values.backup.existingClaim }}
{{- end -}}
{{- end -}}

{{/*
One of files/*.sh as it runs: files/lib.sh (log, pause, ctl, cluster_healthy) in front of it. Parameters: root, file.
*/}}
{{- define "etcd.script" -}}
{{ .root.Files.Get "files/lib.sh" }}
{{ .root.Files.Get (printf "files/%s" .file) }}
{{- end -}}

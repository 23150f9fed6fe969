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

{{- define "etcd.labels" -}}
{{ include "etcd.selectorLabels" . }}
app.kubernetes.io/component: database
app.kubernetes.io/part-of: hashstack
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
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

{{- define "etcd.imagePullSecrets" -}}
{{- $secrets := concat (default list ((.Values.global).imagePullSecrets)) .Values.imagePullSecrets -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
{{- end }}
{{- end -}}
{{- end -}}

{{- define "etcd.clientScheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/* <release>-etcd-N.<headless>.<namespace>.svc.<clusterDomain> */}}
{{- define "etcd.memberHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "etcd.fullname" .root) (int .index) (include "etcd.headlessName" .root) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* name=peerURL for every member: the bootstrap configuration of a new cluster. */}}
{{- define "etcd.initialCluster" -}}
{{- $members := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $host := include "etcd.memberHost" (dict "root" $ "index" $i) -}}
{{- $members = append $members (printf "%s-%d=http://%s:2380" (include "etcd.fullname" $) $i $host) -}}
{{- end -}}
{{- join "," $members -}}
{{- end -}}

{{/* Every member's client URL; the entrypoint asks these about the cluster's membership. */}}
{{- define "etcd.memberClientURLs" -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $urls = append $urls (printf "%s://%s:2379" (include "etcd.clientScheme" $) (include "etcd.memberHost" (dict "root" $ "index" $i))) -}}
{{- end -}}
{{- join "," $urls -}}
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

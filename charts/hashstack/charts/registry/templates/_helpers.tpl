{{/* Names are pinned to the release, never to the chart name. */}}
{{- define "registry.fullname" -}}
{{- printf "%s-registry" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "registry.proxyName" -}}
{{- printf "%s-registry-proxy" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "registry.chartLabel" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels: only labels that never change. The proxy and the test pod have
their own app.kubernetes.io/name, so the registry's selectors never match them.
*/}}
{{- define "registry.selectorLabels" -}}
app.kubernetes.io/name: registry
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "registry.proxySelectorLabels" -}}
app.kubernetes.io/name: registry-proxy
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "registry.testSelectorLabels" -}}
app.kubernetes.io/name: registry-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "registry.commonLabels" -}}
app.kubernetes.io/part-of: hashstack
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "registry.chartLabel" . }}
{{- end -}}

{{- define "registry.labels" -}}
{{ include "registry.selectorLabels" . }}
app.kubernetes.io/component: registry
{{ include "registry.commonLabels" . }}
{{- end -}}

{{- define "registry.proxyLabels" -}}
{{ include "registry.proxySelectorLabels" . }}
app.kubernetes.io/component: registry-proxy
{{ include "registry.commonLabels" . }}
{{- end -}}

{{- define "registry.testLabels" -}}
{{ include "registry.testSelectorLabels" . }}
app.kubernetes.io/component: test
{{ include "registry.commonLabels" . }}
{{- end -}}

{{/* [registry/]repository[:tag][@digest]; global.imageRegistry overrides the registry. */}}
{{- define "registry.imageRef" -}}
{{- $img := .image -}}
{{- $registry := default $img.registry ((.global).imageRegistry) -}}
{{- $ref := $img.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ end -}}
{{- if $img.tag }}{{ $ref = printf "%s:%s" $ref $img.tag }}{{ end -}}
{{- if $img.digest }}{{ $ref = printf "%s@%s" $ref $img.digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{- define "registry.imagePullSecrets" -}}
{{- $secrets := concat (default list ((.Values.global).imagePullSecrets)) .Values.imagePullSecrets -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The claim the registry stores its data on ("" when it uses an emptyDir). */}}
{{- define "registry.claimName" -}}
{{- if .Values.persistence.enabled -}}
{{- default (include "registry.fullname" .) .Values.persistence.existingClaim -}}
{{- end -}}
{{- end -}}

{{/* "true" when the registry's volume can be mounted by one node only. */}}
{{- define "registry.singleNodeVolume" -}}
{{- if and .Values.persistence.enabled (has .Values.persistence.accessMode (list "ReadWriteOnce" "ReadWriteOncePod")) -}}
true
{{- end -}}
{{- end -}}

{{/* "<service>.<namespace>.svc.<domain>:<port>": how the proxy reaches the registry. */}}
{{- define "registry.serviceAddress" -}}
{{- printf "%s.%s.svc.%s:%d" (include "registry.fullname" .) .Release.Namespace .Values.clusterDomain (int .Values.service.port) -}}
{{- end -}}

{{- define "registry.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
fsGroup: {{ .fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "registry.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

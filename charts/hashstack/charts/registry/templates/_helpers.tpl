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

{{/*
Labels are merged as maps, so no key can appear twice: the chart's labels, then
global.commonLabels and commonLabels (and podLabels on the pods), then the selector
labels ("selector": the name of a selector-labels template), which nothing overrides.
"versions": add the chart and app versions (objects; never pod templates, so a chart
bump does not restart the pods).
*/}}
{{- define "registry.mergedLabels" -}}
{{- $root := .root -}}
{{- $labels := dict "app.kubernetes.io/component" .component "app.kubernetes.io/part-of" "hashstack" "app.kubernetes.io/managed-by" $root.Release.Service -}}
{{- range list (($root.Values.global).commonLabels) $root.Values.commonLabels .extra -}}
{{- $labels = mergeOverwrite $labels (deepCopy (default dict .)) -}}
{{- end -}}
{{- if .versions -}}
{{- $_ := set $labels "app.kubernetes.io/version" ($root.Chart.AppVersion | toString) -}}
{{- $_ := set $labels "helm.sh/chart" (include "registry.chartLabel" $root) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $labels (include .selector $root | fromYaml)) -}}
{{- end -}}

{{- define "registry.labels" -}}
{{- include "registry.mergedLabels" (dict "root" . "component" "registry" "selector" "registry.selectorLabels" "versions" true) -}}
{{- end -}}

{{- define "registry.podLabels" -}}
{{- include "registry.mergedLabels" (dict "root" . "component" "registry" "selector" "registry.selectorLabels" "extra" .Values.podLabels) -}}
{{- end -}}

{{- define "registry.proxyLabels" -}}
{{- include "registry.mergedLabels" (dict "root" . "component" "registry-proxy" "selector" "registry.proxySelectorLabels" "versions" true) -}}
{{- end -}}

{{- define "registry.proxyPodLabels" -}}
{{- include "registry.mergedLabels" (dict "root" . "component" "registry-proxy" "selector" "registry.proxySelectorLabels" "extra" .Values.proxy.podLabels) -}}
{{- end -}}

{{- define "registry.testLabels" -}}
{{- include "registry.mergedLabels" (dict "root" . "component" "test" "selector" "registry.testSelectorLabels" "versions" true) -}}
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

{{/* global.imagePullSecrets and the chart's own, each name once (server-side apply refuses repeats). */}}
{{- define "registry.imagePullSecrets" -}}
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

{{/*
The registry container's environment: the chart's variables, then extraEnv, refused
when it repeats a name (server-side apply rejects a list with a repeated name).
*/}}
{{- define "registry.env" -}}
{{- $env := include "registry.chartEnv" . | fromYamlArray -}}
{{- $taken := list -}}
{{- range $env }}{{ $taken = append $taken .name }}{{ end -}}
{{- range .Values.extraEnv -}}
{{- if has .name $taken -}}
{{- fail (printf "registry.extraEnv: %s is set twice (the chart sets it from a value, or extraEnv repeats it); use the value or name it once" .name) -}}
{{- end -}}
{{- $taken = append $taken .name -}}
{{- end -}}
{{- toYaml (concat $env (default list .Values.extraEnv)) -}}
{{- end -}}

{{- define "registry.chartEnv" -}}
- name: REGISTRY_HTTP_ADDR
  value: ":5000"
- name: REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY
  value: /var/lib/registry
# Lets `DELETE /v2/<name>/manifests/<digest>` and garbage collection free space.
- name: REGISTRY_STORAGE_DELETE_ENABLED
  value: "true"
# distribution 3 exports OpenTelemetry traces by default; there is no collector.
- name: OTEL_TRACES_EXPORTER
  value: none
{{- if .Values.auth.htpasswd.enabled }}
- name: REGISTRY_AUTH
  value: htpasswd
- name: REGISTRY_AUTH_HTPASSWD_REALM
  value: {{ .Values.auth.htpasswd.realm | quote }}
- name: REGISTRY_AUTH_HTPASSWD_PATH
  value: /etc/registry/auth/htpasswd
{{- end }}
{{- if .Values.httpSecret.existingSecret }}
# Shared by every replica, so an upload may continue on another one.
- name: REGISTRY_HTTP_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.httpSecret.existingSecret }}
      key: {{ .Values.httpSecret.key }}
{{- end }}
{{- end -}}

{{/*
The one NetworkPolicy switch: global.networkPolicy.enabled when the umbrella (or the
user) sets it, else networkPolicy.enabled. "true" or "".
*/}}
{{- define "registry.networkPolicyEnabled" -}}
{{- $global := dig "networkPolicy" "enabled" nil (default dict .Values.global) -}}
{{- if kindIs "bool" $global -}}
{{- if $global }}true{{ end -}}
{{- else if .Values.networkPolicy.enabled -}}
true
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

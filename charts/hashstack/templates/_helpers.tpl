{{/*
Shared helpers. Most take a dict: "root" (the top-level context) and "name" (a service
key of values.yaml: hello, persistence, hash). Every service's objects come from the
named templates in _service.tpl, so a new service needs only a values block (with its
schema entry) and a one-line file under templates/.
*/}}

{{/* The container port every service listens on (the images' PORT, named `http`). */}}
{{- define "hashstack.containerPort" -}}
8080
{{- end }}

{{/*
The port that answers only /metrics (the images' METRICS_PORT, named `metrics`), so the
scraper is let in there and never to the API.
*/}}
{{- define "hashstack.metricsPort" -}}
{{- .root.Values.metrics.port | int }}
{{- end }}

{{/*
The prefix of every object name of the umbrella chart: `fullnameOverride`, else
`<release>-<nameOverride>`, else the release name (the default, pinned: `<release>-hash`).
*/}}
{{- define "hashstack.prefix" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if .Values.nameOverride }}
{{- printf "%s-%s" .Release.Name .Values.nameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- .Release.Name }}
{{- end }}
{{- end }}

{{/*
Object name: `<prefix>-<name>`, cut to 63 characters. Deliberately not the stock
fullname helper, which would collapse release `hashstack` + chart `hash` into one word.
*/}}
{{- define "hashstack.fullname" -}}
{{- printf "%s-%s" (include "hashstack.prefix" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ServiceAccount of a service's pods: its own when `serviceAccount.create`, else `serviceAccount.name` or the namespace's default. */}}
{{- define "hashstack.serviceAccountName" -}}
{{- $sa := (index .root.Values .name).serviceAccount }}
{{- if $sa.create }}
{{- default (include "hashstack.fullname" .) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* helm.sh/chart label value. */}}
{{- define "hashstack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A label value: at most 63 characters, only the characters labels allow. */}}
{{- define "hashstack.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" (toString .) "_" | trunc 63 | trimSuffix "-" | trimSuffix "_" | trimSuffix "." }}
{{- end }}

{{/* Selector labels: only labels that never change over a release's life. */}}
{{- define "hashstack.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/*
The labels of an object, merged as a map so no key appears twice: the chart's labels,
then `global.commonLabels` and `commonLabels`, then the chart and app versions and the
selector labels, which nothing overrides. Takes "root", "name", "component" and
optional "version".
*/}}
{{- define "hashstack.labels" -}}
{{- $labels := include "hashstack.userLabels" (dict "root" .root "component" .component) | fromYaml }}
{{- $_ := set $labels "helm.sh/chart" (include "hashstack.chart" .root) }}
{{- $_ = set $labels "app.kubernetes.io/version" (include "hashstack.labelValue" (default .root.Chart.AppVersion .version)) }}
{{- toYaml (mergeOverwrite $labels (include "hashstack.selectorLabels" . | fromYaml)) }}
{{- end }}

{{/*
The chart's own non-selector labels under the user's: `global.commonLabels`,
`commonLabels` and "extra" (a map, e.g. podLabels), later ones winning.
*/}}
{{- define "hashstack.userLabels" -}}
{{- $labels := dict "app.kubernetes.io/component" .component "app.kubernetes.io/part-of" "hashstack" "app.kubernetes.io/managed-by" .root.Release.Service }}
{{- range list (dig "commonLabels" dict (.root.Values.global | default dict)) .root.Values.commonLabels .extra }}
{{- $labels = mergeOverwrite $labels (deepCopy (. | default dict)) }}
{{- end }}
{{- toYaml $labels }}
{{- end }}

{{/*
Labels of a service's pod template: no `helm.sh/chart` or `app.kubernetes.io/version`,
so a chart bump alone does not restart every pod. `<name>.podLabels` merge over the
common labels; the selector labels win. Pods that use etcd carry the label the etcd
subchart's NetworkPolicy admits.
*/}}
{{- define "hashstack.podLabels" -}}
{{- $v := index .root.Values .name }}
{{- $labels := include "hashstack.userLabels" (dict "root" .root "component" $v.component "extra" $v.podLabels) | fromYaml }}
{{- if and $v.usesEtcd .root.Values.etcd.enabled }}
{{- $_ := set $labels "hashstack/etcd-client" "true" }}
{{- end }}
{{- toYaml (mergeOverwrite $labels (include "hashstack.selectorLabels" . | fromYaml)) }}
{{- end }}

{{/*
The one NetworkPolicy switch: `global.networkPolicy.enabled` when set (the subcharts
read it too), else `networkPolicy.enabled`. "true" or "".
*/}}
{{- define "hashstack.networkPolicyEnabled" -}}
{{- $global := dig "networkPolicy" "enabled" nil (.Values.global | default dict) }}
{{- if kindIs "bool" $global }}
{{- if $global }}true{{ end }}
{{- else if .Values.networkPolicy.enabled }}true
{{- end }}
{{- end }}

{{/* Labels of one service's objects. */}}
{{- define "hashstack.serviceLabels" -}}
{{- $v := index .root.Values .name }}
{{- include "hashstack.labels" (dict "root" .root "name" .name "component" $v.component "version" (include "hashstack.imageTag" .)) }}
{{- end }}

{{/* The image tag of a service: `image.tag`, or the chart's appVersion when empty. */}}
{{- define "hashstack.imageTag" -}}
{{- $v := index .root.Values .name }}
{{- default .root.Chart.AppVersion $v.image.tag | toString }}
{{- end }}

{{/*
An image reference `[registry/]repository[:tag][@digest]`. `global.imageRegistry`
overrides the service's own registry.
*/}}
{{- define "hashstack.image" -}}
{{- $v := index .root.Values .name }}
{{- $registry := default $v.image.registry (dig "imageRegistry" "" (.root.Values.global | default dict)) }}
{{- $ref := $v.image.repository }}
{{- if $registry }}
{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}
{{- end }}
{{- $tag := include "hashstack.imageTag" . }}
{{- if $tag }}
{{- $ref = printf "%s:%s" $ref $tag }}
{{- end }}
{{- with $v.image.digest }}
{{- $ref = printf "%s@%s" $ref . }}
{{- end }}
{{- $ref }}
{{- end }}

{{/* imagePullSecrets: the global list and the service's own, without repeats. */}}
{{- define "hashstack.imagePullSecrets" -}}
{{- $v := index .root.Values .name }}
{{- $names := list }}
{{- range concat (dig "imagePullSecrets" list (.root.Values.global | default dict)) ($v.imagePullSecrets | default list) }}
{{- if kindIs "map" . }}
{{- $names = append $names .name }}
{{- else }}
{{- $names = append $names . }}
{{- end }}
{{- end }}
{{- with uniq $names }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
An env value as a string: whole numbers print without an exponent (YAML numbers
reach templates as floats, and 1000000 would otherwise become "1e+06").
*/}}
{{- define "hashstack.envValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) }}
{{- printf "%d" (int64 .) }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* The URL of a service of this release as the other services reach it. */}}
{{- define "hashstack.serviceURL" -}}
{{- $v := index .root.Values .name }}
{{- if not (and (kindIs "map" $v) $v.enabled) }}
{{- fail (printf "%s is linked from another service but %s.enabled is false" .name .name) }}
{{- end }}
{{- printf "http://%s:%d" (include "hashstack.fullname" .) (int $v.service.port) }}
{{- end }}

{{/* Name of a service's headless Service: one DNS address per ready pod. */}}
{{- define "hashstack.headlessName" -}}
{{- printf "%s-headless" (include "hashstack.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The URL another service of the release links to: the headless Service (every pod's
address, the container port) when `<name>.service.headless`, else the Service's.
*/}}
{{- define "hashstack.linkURL" -}}
{{- $url := include "hashstack.serviceURL" . }}
{{- if (index .root.Values .name).service.headless }}
{{- $url = printf "http://%s:%s" (include "hashstack.headlessName" .) (include "hashstack.containerPort" .) }}
{{- end }}
{{- $url }}
{{- end }}

{{/* Whether the etcd client connection uses TLS (in-chart etcd or external). */}}
{{- define "hashstack.etcdTLS" -}}
{{- if .Values.etcd.enabled }}
{{- if dig "tls" "enabled" false .Values.etcd }}true{{ end }}
{{- else }}
{{- if .Values.externalEtcd.tls.enabled }}true{{ end }}
{{- end }}
{{- end }}

{{/* The Secret holding the etcd client certificates (ca.crt, tls.crt, tls.key). */}}
{{- define "hashstack.etcdTLSSecret" -}}
{{- if .Values.etcd.enabled }}
{{- $secret := dig "tls" "existingSecret" "" .Values.etcd }}
{{- if not $secret }}
{{- fail "etcd.tls.existingSecret: name the Secret with the etcd client certificates" }}
{{- end }}
{{- $secret }}
{{- else }}
{{- if not .Values.externalEtcd.tls.existingSecret }}
{{- fail "externalEtcd.tls.existingSecret: name the Secret with the etcd client certificates" }}
{{- end }}
{{- .Values.externalEtcd.tls.existingSecret }}
{{- end }}
{{- end }}

{{/* The etcd client endpoints, comma-separated: the etcd subchart's client Service or externalEtcd. */}}
{{- define "hashstack.etcdEndpoints" -}}
{{- if .Values.etcd.enabled }}
{{- $scheme := "http" }}
{{- if include "hashstack.etcdTLS" . }}
{{- $scheme = "https" }}
{{- end }}
{{- printf "%s://%s-etcd:%d" $scheme .Release.Name 2379 }}
{{- else }}
{{- if not .Values.externalEtcd.endpoints }}
{{- fail "externalEtcd.endpoints: give at least one etcd client URL when etcd.enabled is false" }}
{{- end }}
{{- join "," .Values.externalEtcd.endpoints }}
{{- end }}
{{- end }}

{{/*
The environment of a service, as a YAML map NAME: "value": the service's `config`
plus the variables the chart sets itself (which `config` may not repeat).
*/}}
{{- define "hashstack.env" -}}
{{- $root := .root }}
{{- $v := index $root.Values .name }}
{{- $env := dict "PORT" (include "hashstack.containerPort" .) "METRICS_PORT" (include "hashstack.metricsPort" .) }}
{{- range $var, $target := $v.links | default dict }}
{{- $_ := set $env $var (include "hashstack.linkURL" (dict "root" $root "name" $target)) }}
{{- end }}
{{- if $v.usesEtcd }}
{{- $_ := set $env "ETCD_ENDPOINTS" (include "hashstack.etcdEndpoints" $root) }}
{{- if include "hashstack.etcdTLS" $root }}
{{- $_ := set $env "ETCD_CA_FILE" "/etc/hashstack/etcd-tls/ca.crt" }}
{{- $_ := set $env "ETCD_CERT_FILE" "/etc/hashstack/etcd-tls/tls.crt" }}
{{- $_ := set $env "ETCD_KEY_FILE" "/etc/hashstack/etcd-tls/tls.key" }}
{{- end }}
{{- end }}
{{- if $v.dev.reload }}
{{- $_ := set $env "GUNICORN_RELOAD" "true" }}
{{- end }}
{{- with $root.Values.tracing }}
{{- if .enabled }}
{{- if not .endpoint }}
{{- fail "tracing.endpoint: give the OTLP/HTTP endpoint (e.g. http://otel-collector.monitoring:4318) when tracing.enabled" }}
{{- end }}
{{- $_ := set $env "OTEL_TRACES_EXPORTER" "otlp" }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" (trimSuffix "/" .endpoint) }}
{{- $_ := set $env "OTEL_SERVICE_NAME" $.name }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER" "parentbased_traceidratio" }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER_ARG" (include "hashstack.envValue" .sampleRatio) }}
{{- end }}
{{- end }}
{{- range $var, $value := $v.config | default dict }}
{{- if hasKey $env $var }}
{{- fail (printf "%s.config.%s: set by the chart itself, remove it from config" $.name $var) }}
{{- end }}
{{- $_ := set $env $var (include "hashstack.envValue" $value) }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/* Pod-level securityContext shared by the services' and the test pods. */}}
{{- define "hashstack.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/* Container-level securityContext shared by every container of the umbrella chart. */}}
{{- define "hashstack.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}

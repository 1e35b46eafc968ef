{{/* Names, labels and the pieces every todo-host Deployment shares. */}}

{{- define "todo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "todo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one service's objects: <fullname>-<service>. */}}
{{- define "todo.component" -}}
{{- printf "%s-%s" (include "todo.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "todo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "todo.labels" -}}
{{ include "todo.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: todo-chatbot
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of objects that belong to the release as a whole. */}}
{{- define "todo.commonLabels" -}}
{{ include "todo.labels" (dict "root" . "name" "shared") }}
{{- end -}}

{{- define "todo.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "todo.serviceAccount" -}}
{{- include "todo.fullname" . -}}
{{- end -}}

{{- define "todo.daprConfig" -}}
{{- include "todo.fullname" . -}}
{{- end -}}

{{/* The app-ids of the enabled todo-host services, as a list. */}}
{{- define "todo.appIds" -}}
{{- $ids := list -}}
{{- range $name, $svc := .Values.services -}}
{{- if $svc.enabled }}{{ $ids = append $ids $name }}{{ end -}}
{{- end -}}
{{- toJson $ids -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: the preStop pause and the host's drain, plus
     10 s for the rest of the shutdown; never less than daprd's block + graceful
     shutdown, so neither container is killed mid-drain. */}}
{{- define "todo.gracePeriod" -}}
{{- $app := add .Values.shutdown.preStopSeconds (div (add .Values.shutdown.drainTimeoutMs 999) 1000) 10 -}}
{{- $dapr := add .Values.dapr.blockShutdownSeconds .Values.dapr.gracefulShutdownSeconds 5 -}}
{{- max $app $dapr -}}
{{- end -}}

{{/* Security context of every container the chart runs. */}}
{{- define "todo.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "todo.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The database of a todo-host service: with Dapr and database.urlFromSecretStore,
     the name of the secret the host reads through the Dapr secrets API at start-up
     (core/src/runtime/config.c); else DATABASE_URL from its Secret. */}}
{{- define "todo.hostDatabaseEnv" -}}
{{- if and .Values.dapr.enabled .Values.database.urlFromSecretStore -}}
- name: DATABASE_URL_SECRET
  value: {{ .Values.database.secretName | quote }}
- name: DATABASE_URL_SECRET_KEY
  value: {{ .Values.database.urlKey | quote }}
{{- else -}}
{{ include "todo.databaseEnv" . }}
{{- end -}}
{{- end -}}

{{/* DATABASE_URL from its Secret. */}}
{{- define "todo.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.secretName }}
      key: {{ .Values.database.urlKey }}
{{- end -}}

{{/* The JWKS the host verifies tokens with. */}}
{{- define "todo.jwksUrl" -}}
{{- if .Values.auth.jwksUrl -}}
{{- .Values.auth.jwksUrl -}}
{{- else if .Values.frontend.enabled -}}
{{- printf "http://%s:%v/api/auth/jwks" (include "todo.component" (dict "root" . "name" "frontend")) .Values.frontend.port -}}
{{- end -}}
{{- end -}}

{{/* The site's public URL, no trailing slash (BETTER_AUTH_URL; its origin may open /ws). */}}
{{- define "todo.publicUrl" -}}
{{- trimSuffix "/" (default (printf "https://%s" .Values.ingress.host) .Values.frontend.publicUrl) -}}
{{- end -}}

{{/* The tokens' "iss" and "aud": what the front end signs and the host checks, one value
     for both. auth.* when set; with the front end, its public URL and "todo-api". */}}
{{- define "todo.authIssuer" -}}
{{- if .Values.auth.issuer -}}{{ .Values.auth.issuer }}{{- else if .Values.frontend.enabled -}}{{ include "todo.publicUrl" . }}{{- end -}}
{{- end -}}
{{- define "todo.authAudience" -}}
{{- if .Values.auth.audience -}}{{ .Values.auth.audience }}{{- else if .Values.frontend.enabled -}}todo-api{{- end -}}
{{- end -}}

{{/* WS_ALLOWED_ORIGINS of a websocket service (dict root, svc): its env's list plus, with
     the front end, the site's public origin (scheme://host[:port], no path). */}}
{{- define "todo.wsOrigins" -}}
{{- $list := list -}}
{{- range (splitList "," (default "" (index .svc.env "WS_ALLOWED_ORIGINS"))) -}}
{{- if trim . }}{{ $list = append $list (trim .) }}{{ end -}}
{{- end -}}
{{- if .root.Values.frontend.enabled -}}
{{- $u := urlParse (include "todo.publicUrl" .root) -}}
{{- $origin := printf "%s://%s" $u.scheme $u.host -}}
{{- if not (has $origin $list) }}{{ $list = append $list $origin }}{{ end -}}
{{- end -}}
{{- join "," $list -}}
{{- end -}}

{{/* Better Auth's settings, the same in the front end and its migration Job: the
     public URL, the session secret (a Secret), the database, the tokens' iss/aud. */}}
{{- define "todo.frontendAuthEnv" -}}
- name: BETTER_AUTH_URL
  value: {{ include "todo.publicUrl" . | quote }}
- name: BETTER_AUTH_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.frontend.authSecretName }}
      key: secret
- name: AUTH_ISSUER
  value: {{ include "todo.authIssuer" . | quote }}
- name: AUTH_AUDIENCE
  value: {{ include "todo.authAudience" . | quote }}
{{ include "todo.databaseEnv" . }}
{{- end -}}

{{/* What values.schema.json cannot say (relations between fields). */}}
{{- define "todo.validate" -}}
{{- range $name, $svc := .Values.services -}}
{{- if and $svc.enabled $svc.autoscaling.enabled (gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) -}}
{{- fail (printf "services.%s.autoscaling: minReplicas (%v) is above maxReplicas (%v)" $name $svc.autoscaling.minReplicas $svc.autoscaling.maxReplicas) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.dapr.enabled (lt (int .Values.dapr.blockShutdownSeconds) (int .Values.shutdown.preStopSeconds)) -}}
{{- fail (printf "dapr.blockShutdownSeconds (%v) must cover shutdown.preStopSeconds (%v): the app publishes while it drains" .Values.dapr.blockShutdownSeconds .Values.shutdown.preStopSeconds) -}}
{{- end -}}
{{- if and .Values.frontend.enabled (not (or .Values.frontend.publicUrl .Values.ingress.host)) -}}
{{- fail "frontend.enabled needs frontend.publicUrl or ingress.host (BETTER_AUTH_URL)" -}}
{{- end -}}
{{- if and .Values.frontend.enabled (not .Values.services.api.enabled) -}}
{{- fail "frontend.enabled needs services.api.enabled (the front end proxies /api/* to it: TODO_API_URL)" -}}
{{- end -}}
{{- end -}}

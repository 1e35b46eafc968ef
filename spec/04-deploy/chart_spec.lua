-- The Helm chart charts/todo-chatbot as rendered by the real helm (pinned by
-- scripts/install-deploy-tools): the properties a deploy relies on, asserted on
-- the objects `helm template` produces with the default and the DOKS values.
-- scripts/check-deploy validates the same output against the Kubernetes and Dapr
-- schemas; this spec checks what a schema cannot: zero-downtime settings,
-- security settings, Dapr wiring, and that no secret value is rendered.
local h = require "spec.helpers"
local json = require "json"

local CHART = "charts/todo-chatbot"
local SERVICES = { "api", "recurring-task", "notification", "websocket", "chat" }
-- Variables ending in URL that name no credential (addresses inside the cluster or public).
local PUBLIC_URLS = { AUTH_JWKS_URL = true, BETTER_AUTH_URL = true, TODO_API_URL = true, TODO_WS_URL = true }
-- Variables named like secrets whose values are only the NAMES of secrets (of the Dapr
-- secret store), never a secret itself.
local NAMES_OF_SECRETS = { DATABASE_URL_SECRET = true, DATABASE_URL_SECRET_KEY = true, DAPR_SECRETSTORE = true }
-- What looks like a secret among the settings the host and the bundles read.
local function secret_like(name)
  return not NAMES_OF_SECRETS[name] and (name:match("SECRET") or name:match("TOKEN") or name:match("PASSWORD")
    or name:match("_KEY$") or name == "DATABASE_URL") and true or false
end

local function tools_dir()
  local out, ok = h.sh("scripts/install-deploy-tools")
  assert(ok, "scripts/install-deploy-tools failed (this spec needs helm):\n" .. out)
  return out:match("([^\n]+)$")
end

-- YAML (one file, several documents) -> a Lua list, through python3-yaml.
local function yaml_docs(cmd)
  local out, ok = h.sh(cmd .. " | python3 -c " .. h.sh_quote(
    "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"))
  assert(ok, "failed: " .. cmd .. "\n" .. out)
  return json.decode(out), out
end

local function render(dir, args)
  return yaml_docs(h.sh_quote(dir .. "/helm") .. " template todo " .. CHART ..
    " --namespace todo --kube-version 1.30.0 " .. (args or ""))
end

local function of_kind(objs, kind)
  local r = {}
  for _, o in ipairs(objs) do if o.kind == kind then r[#r + 1] = o end end
  return r
end

local function named(objs, kind, name)
  for _, o in ipairs(objs) do
    if o.kind == kind and o.metadata.name == name then return o end
  end
end

local function env_of(container)
  local e = {}
  for _, v in ipairs(container.env or {}) do e[v.name] = v end
  return e
end

local function meta_of(component)
  local m = {}
  for _, item in ipairs(component.spec.metadata) do m[item.name] = item end
  return m
end

-- Every container of a pod template, init containers included.
local function containers(pod)
  local r = {}
  for _, c in ipairs(pod.spec.containers) do r[#r + 1] = c end
  for _, c in ipairs(pod.spec.initContainers or {}) do r[#r + 1] = c end
  return r
end

describe("Helm chart charts/todo-chatbot", function()
  local dir, default, doks, default_text, doks_text

  lazy_setup(function()
    dir = tools_dir()
    default, default_text = render(dir)
    doks, doks_text = render(dir, "-f " .. CHART .. "/values-doks.yaml --set image.tag=abc123")
  end)

  it("runs one Deployment per service from the one image, each with its own Dapr app-id", function()
    local ids, images = {}, {}
    for _, name in ipairs(SERVICES) do
      local d = named(default, "Deployment", "todo-todo-chatbot-" .. name)
      assert.is_truthy(d, "no Deployment for " .. name)
      local ann = d.spec.template.metadata.annotations
      assert.are.equal("true", ann["dapr.io/enabled"])
      assert.are.equal(name, ann["dapr.io/app-id"])
      assert.are.equal("8080", ann["dapr.io/app-port"])
      assert.are.equal("todo-todo-chatbot", ann["dapr.io/config"])
      assert.is_nil(ids[name], "app-id used twice: " .. name)
      ids[name] = true
      local c = d.spec.template.spec.containers[1]
      assert.are.same({ "run", "services/" .. name }, c.args)
      images[c.image] = true
      assert.are.equal("dapr", env_of(c).BUS.value)
    end
    local n = 0
    for _ in pairs(images) do n = n + 1 end
    assert.are.equal(1, n, "the services must share one image")
    assert.are.equal(#SERVICES, #of_kind(default, "Deployment"))
  end)

  it("rolls out without downtime: probes, maxUnavailable 0, preStop pause, grace above the drain", function()
    for _, objs in ipairs { default, doks } do
      for _, d in ipairs(of_kind(objs, "Deployment")) do
        local name = d.metadata.name
        assert.are.equal(0, d.spec.strategy.rollingUpdate.maxUnavailable, name)
        local pod = d.spec.template
        local c = pod.spec.containers[1]
        assert.is_truthy(c.readinessProbe and c.readinessProbe.httpGet, name .. ": readiness probe")
        assert.is_truthy(c.livenessProbe and c.livenessProbe.httpGet, name .. ": liveness probe")
        local pause = c.lifecycle.preStop.sleep.seconds
        assert.is_true(pause >= 1, name .. ": preStop pause")
        local grace = pod.spec.terminationGracePeriodSeconds
        if not name:match("frontend$") then
          assert.are.equal("/readyz", c.readinessProbe.httpGet.path, name)
          assert.are.equal("/healthz", c.livenessProbe.httpGet.path, name)
          local drain_ms = tonumber(env_of(c).DRAIN_TIMEOUT_MS.value)
          assert.is_true(grace > pause + drain_ms / 1000, name .. ": grace " .. grace .. " s must exceed the drain")
          local ann = pod.metadata.annotations
          local block = tonumber(ann["dapr.io/block-shutdown-duration"]:match("^(%d+)s$"))
          assert.is_true(grace >= block + tonumber(ann["dapr.io/graceful-shutdown-seconds"]), name)
          assert.is_true(block >= pause, name .. ": daprd publishes while the app drains")
        end
      end
    end
  end)

  it("has a PodDisruptionBudget for every Deployment and autoscalers for api and websocket only", function()
    for _, d in ipairs(of_kind(doks, "Deployment")) do
      local pdb = named(doks, "PodDisruptionBudget", d.metadata.name)
      assert.is_truthy(pdb, "no PDB for " .. d.metadata.name)
      assert.are.same(d.spec.selector.matchLabels, pdb.spec.selector.matchLabels)
    end
    local scaled = {}
    for _, hpa in ipairs(of_kind(default, "HorizontalPodAutoscaler")) do
      scaled[#scaled + 1] = hpa.spec.scaleTargetRef.name
      local d = named(default, "Deployment", hpa.spec.scaleTargetRef.name)
      assert.is_nil(d.spec.replicas, "the HPA owns the replica count of " .. d.metadata.name)
    end
    table.sort(scaled)
    assert.are.same({ "todo-todo-chatbot-api", "todo-todo-chatbot-websocket" }, scaled)
  end)

  it("runs every container non-root, read-only, without capabilities, under seccomp", function()
    local checked = 0
    for _, objs in ipairs { default, doks } do
      for _, o in ipairs(objs) do
        local pod = (o.kind == "Deployment" or o.kind == "Job") and o.spec.template
        if pod then
          local psc = pod.spec.securityContext
          assert.is_true(psc.runAsNonRoot, o.metadata.name)
          assert.is_true(psc.runAsUser > 0, o.metadata.name)
          assert.are.equal("RuntimeDefault", psc.seccompProfile.type, o.metadata.name)
          for _, c in ipairs(containers(pod)) do
            local sc = c.securityContext
            assert.is_true(sc.readOnlyRootFilesystem, o.metadata.name)
            assert.is_false(sc.allowPrivilegeEscalation, o.metadata.name)
            assert.are.same({ "ALL" }, sc.capabilities.drop, o.metadata.name)
            assert.is_nil(sc.capabilities.add, o.metadata.name)
            checked = checked + 1
          end
        end
      end
    end
    assert.is_true(checked >= 13, "checked only " .. checked .. " containers")
  end)

  it("renders no secret value: no Secret objects, sensitive variables only from Secrets", function()
    for _, pair in ipairs { { default, default_text }, { doks, doks_text } } do
      local objs, text = pair[1], pair[2]
      assert.are.equal(0, #of_kind(objs, "Secret"))
      assert.is_nil(text:find("postgres(ql)?://"), "a database URL in the output")
      for _, o in ipairs(objs) do
        local pod = (o.kind == "Deployment" or o.kind == "Job") and o.spec.template
        for _, c in ipairs(pod and containers(pod) or {}) do
          for _, v in ipairs(c.env or {}) do
            if NAMES_OF_SECRETS[v.name] then
              assert.matches("^[a-z0-9][-a-z0-9]*$", v.value, o.metadata.name .. ": " .. v.name .. " is not a name")
            elseif v.name:match("URL$") and not PUBLIC_URLS[v.name] or secret_like(v.name) then
              assert.is_nil(v.value, o.metadata.name .. ": " .. v.name .. " has a literal value")
              assert.is_truthy(v.valueFrom and v.valueFrom.secretKeyRef, o.metadata.name .. ": " .. v.name)
            end
          end
        end
      end
      for _, comp in ipairs(of_kind(objs, "Component")) do
        for _, item in ipairs(comp.spec.metadata) do
          if item.name:match("[Pp]assword") or item.name:match("[Uu]sername") or item.name == "brokers" then
            assert.is_nil(item.value, comp.metadata.name .. "." .. item.name)
            assert.is_truthy(item.secretKeyRef, comp.metadata.name .. "." .. item.name)
          end
        end
      end
    end
  end)

  -- Every setting named like a secret that the host (core/) or a bundle (lua/, services/)
  -- reads, found in the sources: each is given from a Secret (or the Dapr secret store)
  -- to every todo-host pod, or is listed here with why the chart does not set it.
  local NOT_SET_BY_THE_CHART = {
    AUTH_DEV_SECRET = "development tokens only; values.schema.json refuses it",
    LLM_API_KEY = "optional (the chat's model); the operator gives it with services.chat.secretEnv",
  }
  local from_store = {} -- setting -> the Dapr secret it is read from (secrets.get)
  local function settings_read()
    local names = {}
    local files = h.sh("git ls-files core/src core/lua lua services | grep -E '\\.(c|lua)$'")
    for path in files:gmatch("[^\n]+") do
      local f = assert(io.open(path))
      local text = f:read("a")
      f:close()
      for n in text:gmatch('[%w_]*env[%w_]*%(%s*"([A-Z][A-Z0-9_]+)"') do names[n] = true end
      for secret, n in text:gmatch('secrets%.get%(%s*"([%w_.-]+)",%s*"([A-Z][A-Z0-9_]+)"') do
        names[n], from_store[n] = true, secret
      end
      for n in text:gmatch('{%s*"([A-Z][A-Z0-9_]+)",%s*"[a-z-]+", T_') do names[n] = true end
    end
    return names
  end

  it("gives every secret the host and the bundles read from a Secret or the Dapr secret store", function()
    local read = settings_read()
    for _, n in ipairs { "DATABASE_URL", "API_CURSOR_SECRET", "DAPR_API_TOKEN", "APP_API_TOKEN", "PORT" } do
      assert.is_true(read[n], "the source scan missed " .. n)
    end
    for _, objs in ipairs { default, doks } do
      local role = of_kind(objs, "Role")[1]
      for _, name in ipairs(SERVICES) do
        local e = env_of(named(objs, "Deployment", "todo-todo-chatbot-" .. name).spec.template.spec.containers[1])
        for n in pairs(read) do
          if secret_like(n) and not NOT_SET_BY_THE_CHART[n] then
            if n == "DATABASE_URL" then
              -- through the Dapr secrets API (core/src/runtime/config.c), not the environment
              assert.is_nil(e.DATABASE_URL, name .. ": DATABASE_URL in the environment")
              assert.are.equal("todo-database", e.DATABASE_URL_SECRET.value, name)
              assert.are.equal("url", e.DATABASE_URL_SECRET_KEY.value, name)
              assert.is_truthy(named(objs, "Component", e.DAPR_SECRETSTORE.value), name .. ": no such secret store")
              local readable = {}
              for _, r in ipairs(role.rules[1].resourceNames) do readable[r] = true end
              assert.is_true(readable["todo-database"], "daprd may not read the database Secret")
            elseif from_store[n] then
              -- read at run time through the Dapr secrets API (lua/secrets) with BUS=dapr:
              -- the pods' Role must let daprd read that Secret
              local readable = {}
              for _, r in ipairs(role.rules[1].resourceNames) do readable[r] = true end
              assert.is_true(readable[from_store[n]],
                "daprd may not read the Secret " .. from_store[n] .. " (" .. n .. ")")
            else
              assert.is_truthy(e[n], name .. " lacks " .. n)
              assert.is_truthy(e[n].valueFrom and e[n].valueFrom.secretKeyRef,
                name .. ": " .. n .. " not from a Secret")
            end
          end
        end
        assert.are.equal("todo-api-cursor", e.API_CURSOR_SECRET.valueFrom.secretKeyRef.name)
        assert.is_nil(e.AUTH_DEV_SECRET, name)
      end
    end
    -- Without Dapr the URL comes from the Secret as DATABASE_URL; the cursor key stays.
    local plain = render(dir, "--set dapr.enabled=false")
    for _, name in ipairs(SERVICES) do
      local e = env_of(named(plain, "Deployment", "todo-todo-chatbot-" .. name).spec.template.spec.containers[1])
      assert.are.equal("todo-database", e.DATABASE_URL.valueFrom.secretKeyRef.name, name)
      assert.is_nil(e.DATABASE_URL_SECRET, name)
      assert.is_truthy(e.API_CURSOR_SECRET.valueFrom.secretKeyRef, name)
    end
    -- The model key, when the operator gives one, comes from its Secret.
    local llm = render(dir, "--set services.chat.secretEnv.LLM_API_KEY.secret=todo-llm" ..
      " --set services.chat.secretEnv.LLM_API_KEY.key=api-key")
    local chat = env_of(named(llm, "Deployment", "todo-todo-chatbot-chat").spec.template.spec.containers[1])
    assert.are.same({ name = "todo-llm", key = "api-key" }, chat.LLM_API_KEY.valueFrom.secretKeyRef)
  end)

  it("refuses a variable named like a secret among the plain values", function()
    for _, set in ipairs { "services.chat.env.LLM_API_KEY=sk-123", "hostEnv.API_CURSOR_SECRET=abc",
      "services.api.env.DATABASE_URL=postgresql://x", "frontend.env.BETTER_AUTH_SECRET=abc" } do
      local out, ok = h.sh(h.sh_quote(dir .. "/helm") .. " template todo " .. CHART ..
        " --kube-version 1.30.0 --set " .. h.sh_quote(set))
      assert.is_falsy(ok, set .. " rendered")
      assert.matches("invalid propertyName '" .. set:match("%.([A-Z_]+)=") .. "'", out, 1, true)
    end
  end)

  it("templates dapr/cluster's components: work groups per app-id, one group per pod for broadcast", function()
    local pubsub = named(default, "Component", "pubsub")
    local broadcast = named(default, "Component", "pubsub-broadcast")
    local m, b = meta_of(pubsub), meta_of(broadcast)
    assert.is_nil(m.consumerID, "pubsub: the group must be the app-id")
    assert.is_nil(m.consumerGroup)
    assert.are.equal("{podName}", b.consumerID.value)
    assert.is_nil(b.consumerGroup, "consumerGroup would override consumerID: replicas would share a group")
    assert.are.same({ "websocket" }, broadcast.scopes)
    assert.are.equal("false", m.disableTls.value)
    for _, c in ipairs { m, b } do assert.is_truthy(c.saslMechanism.value:match("^SHA%-%d+$")) end
    -- The same settings as the committed dapr/cluster files (the chart only adds TLS, scopes, labels).
    local cluster = {}
    for _, f in ipairs { "pubsub", "pubsub-broadcast", "resiliency" } do
      cluster[f] = yaml_docs("cat dapr/cluster/" .. f .. ".yaml")[1]
    end
    for name, comp in pairs { pubsub = pubsub, ["pubsub-broadcast"] = broadcast } do
      local want = cluster[name]
      assert.are.equal(want.spec.type, comp.spec.type)
      assert.are.same(want.auth, comp.auth)
      local got = meta_of(comp)
      for _, item in ipairs(want.spec.metadata) do
        assert.are.same(item, got[item.name], name .. "." .. item.name .. " differs from dapr/cluster")
      end
    end
    local res = named(default, "Resiliency", "pubsub-resiliency")
    assert.are.same(cluster.resiliency.spec, res.spec)
  end)

  it("templates dapr/cluster's state store, its address and password from a Secret", function()
    local store = named(default, "Component", "statestore")
    local want = yaml_docs("cat dapr/cluster/statestore.yaml")[1]
    assert.are.equal(want.spec.type, store.spec.type)
    assert.are.same(want.auth, store.auth)
    local got = meta_of(store)
    for _, item in ipairs(want.spec.metadata) do
      assert.are.same(item, got[item.name], "statestore." .. item.name .. " differs from dapr/cluster")
    end
    local api = named(default, "Deployment", "todo-todo-chatbot-api")
    local e = env_of(api.spec.template.spec.containers[1])
    assert.are.equal("statestore", e.DAPR_STATESTORE.value)
    -- its sidecar may reach the Redis port
    local egress = named(default, "NetworkPolicy", "todo-todo-chatbot-egress")
    local open = false
    for _, rule in ipairs(egress.spec.egress) do
      for _, p in ipairs(rule.ports or {}) do if p.port == 25061 then open = true end end
    end
    assert.is_true(open, "the state store's port is not open for egress")
  end)

  it("templates dapr/cluster's cron binding, scoped to the notification service", function()
    local tick = named(default, "Component", "reminder-tick")
    local want = yaml_docs("cat dapr/cluster/reminder-tick.yaml")[1]
    assert.are.equal(want.spec.type, tick.spec.type)
    assert.are.same(want.spec.metadata, tick.spec.metadata)
    assert.are.same(want.scopes, tick.scopes)
  end)

  it("has a secret store, a Configuration with tracing, and migrations as a pre-install/pre-upgrade hook", function()
    local store = named(default, "Component", "secretstore")
    assert.are.equal("secretstores.kubernetes", store.spec.type)
    local conf = named(default, "Configuration", "todo-todo-chatbot")
    assert.is_truthy(tonumber(conf.spec.tracing.samplingRate))
    local job = of_kind(default, "Job")[1]
    assert.are.equal("pre-install,pre-upgrade", job.metadata.annotations["helm.sh/hook"])
    local c = job.spec.template.spec.containers[1]
    assert.are.equal("migrate", c.args[1])
    assert.are.equal("services/api", c.args[2])
    assert.are.equal("false", job.spec.template.metadata.annotations["dapr.io/enabled"])
    assert.is_truthy(env_of(c).DATABASE_URL.valueFrom.secretKeyRef)
  end)

  it("routes /api, /mcp, /ws and / through ingress-nginx, /ws with long timeouts", function()
    local routes, timeouts = {}, {}
    for _, ing in ipairs(of_kind(doks, "Ingress")) do
      for _, p in ipairs(ing.spec.rules[1].http.paths) do
        routes[p.path] = p.backend.service.name
        timeouts[p.path] = tonumber(ing.metadata.annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"])
      end
      assert.are.equal("nginx", ing.spec.ingressClassName)
    end
    assert.are.equal("todo-todo-chatbot-api", routes["/api"])
    assert.are.equal("todo-todo-chatbot-chat", routes["/api/chat"])
    assert.are.equal("todo-todo-chatbot-chat", routes["/mcp"])
    assert.are.equal("todo-todo-chatbot-websocket", routes["/ws"])
    assert.are.equal("todo-todo-chatbot-frontend", routes["/"])
    assert.are.equal("todo-todo-chatbot-frontend", routes["/api/auth"])
    assert.is_true(timeouts["/ws"] >= 3600)
    -- In the cluster only the site's own origin may open a WebSocket.
    local ws = named(doks, "Deployment", "todo-todo-chatbot-websocket").spec.template.spec.containers[1]
    assert.matches("^https://", env_of(ws).WS_ALLOWED_ORIGINS.value)
    assert.is_nil(timeouts["/api"], "REST keeps the controller's short timeouts")
  end)

  it("labels every object with app.kubernetes.io/* and denies release traffic by default", function()
    for _, o in ipairs(doks) do
      local l = o.metadata.labels
      for _, k in ipairs { "name", "instance", "version", "component", "managed-by", "part-of" } do
        assert.is_truthy(l["app.kubernetes.io/" .. k], o.kind .. " " .. o.metadata.name .. " lacks " .. k)
      end
    end
    local deny = named(doks, "NetworkPolicy", "todo-todo-chatbot-default-deny")
    assert.are.same({ "Ingress", "Egress" }, deny.spec.policyTypes)
    assert.is_nil(deny.spec.ingress)
    assert.is_nil(deny.spec.egress)
    -- Only the services with public paths accept the ingress controller.
    local from_ingress = {}
    for _, np in ipairs(of_kind(doks, "NetworkPolicy")) do
      local svc = np.metadata.name:match("^todo%-todo%-chatbot%-(.+)%-from%-ingress$")
      if svc then from_ingress[#from_ingress + 1] = svc end
    end
    table.sort(from_ingress)
    assert.are.same({ "api", "chat", "websocket" }, from_ingress)
  end)
  describe("with frontend.enabled", function()
    local fe_only
    lazy_setup(function()
      -- The default values with only the front end switched on: every setting derived.
      fe_only = render(dir, "--set frontend.enabled=true --set ingress.host=todo.test" ..
        " --set services.websocket.env.WS_ALLOWED_ORIGINS=https://admin.test")
    end)

    local function frontend_env(objs)
      return env_of(named(objs, "Deployment", "todo-todo-chatbot-frontend").spec.template.spec.containers[1])
    end

    it("gives the front end the api Service, the public /ws, and the host's issuer and audience", function()
      local e = frontend_env(fe_only)
      assert.are.equal("http://todo-todo-chatbot-api:80", e.TODO_API_URL.value)
      assert.is_truthy(named(fe_only, "Service", "todo-todo-chatbot-api"))
      assert.are.equal("wss://todo.test/ws", e.TODO_WS_URL.value)
      assert.are.equal("https://todo.test", e.BETTER_AUTH_URL.value)
      assert.are.equal("https://todo.test", e.AUTH_ISSUER.value)
      assert.are.equal("todo-api", e.AUTH_AUDIENCE.value)
      assert.are.equal("secret", e.BETTER_AUTH_SECRET.valueFrom.secretKeyRef.key)
      -- DOKS: the explicit auth.* values reach the front end too; wsUrl overrides.
      local d = frontend_env(doks)
      assert.are.equal("https://todo.example.com", d.AUTH_ISSUER.value)
      assert.are.equal("https://todo.example.com", d.AUTH_AUDIENCE.value)
      assert.are.equal("wss://todo.example.com/ws", d.TODO_WS_URL.value)
      local over = render(dir, "-f " .. CHART .. "/values-doks.yaml --set frontend.wsUrl=wss://ws.example.com/ws")
      assert.are.equal("wss://ws.example.com/ws", frontend_env(over).TODO_WS_URL.value)
    end)

    it("points every todo-host service at the front end's JWKS with the same issuer and audience", function()
      for _, objs in ipairs { fe_only, doks } do
        local fe = frontend_env(objs)
        for _, name in ipairs(SERVICES) do
          local e = env_of(named(objs, "Deployment", "todo-todo-chatbot-" .. name).spec.template.spec.containers[1])
          assert.are.equal("http://todo-todo-chatbot-frontend:3000/api/auth/jwks", e.AUTH_JWKS_URL.value, name)
          assert.are.equal(fe.AUTH_ISSUER.value, e.AUTH_ISSUER.value, name)
          assert.are.equal(fe.AUTH_AUDIENCE.value, e.AUTH_AUDIENCE.value, name)
        end
      end
      -- Without the front end nothing is invented: no JWKS, no issuer, no audience.
      local api = env_of(named(default, "Deployment", "todo-todo-chatbot-api").spec.template.spec.containers[1])
      assert.is_nil(api.AUTH_JWKS_URL)
      assert.is_nil(api.AUTH_ISSUER)
      assert.is_nil(api.AUTH_AUDIENCE)
    end)

    it("lets the site's origin open /ws, keeping the origins already listed, once each", function()
      local ws = named(fe_only, "Deployment", "todo-todo-chatbot-websocket").spec.template.spec.containers[1]
      local count = 0
      for _, v in ipairs(ws.env) do if v.name == "WS_ALLOWED_ORIGINS" then count = count + 1 end end
      assert.are.equal(1, count)
      assert.are.equal("https://admin.test,https://todo.test", env_of(ws).WS_ALLOWED_ORIGINS.value)
      local dws = named(doks, "Deployment", "todo-todo-chatbot-websocket").spec.template.spec.containers[1]
      assert.are.equal("https://todo.example.com", env_of(dws).WS_ALLOWED_ORIGINS.value)
      -- Without the front end the list is the one given (empty: every origin, the dev default).
      local dflt = named(default, "Deployment", "todo-todo-chatbot-websocket").spec.template.spec.containers[1]
      assert.is_nil(env_of(dflt).WS_ALLOWED_ORIGINS)
    end)

    it("creates Better Auth's tables in a pre-install/pre-upgrade Job from the front-end image", function()
      local job = named(fe_only, "Job", "todo-todo-chatbot-frontend-migrate")
      assert.is_truthy(job, "no front-end migration Job")
      assert.are.equal("pre-install,pre-upgrade", job.metadata.annotations["helm.sh/hook"])
      local c = job.spec.template.spec.containers[1]
      local fe = named(fe_only, "Deployment", "todo-todo-chatbot-frontend").spec.template.spec.containers[1]
      assert.are.equal(fe.image, c.image)
      assert.are.same({ "scripts/migrate.mjs" }, c.args)
      assert.is_nil(c.command, "the image's entrypoint (node) runs it")
      local e, fe_env = env_of(c), env_of(fe)
      for _, k in ipairs { "DATABASE_URL", "BETTER_AUTH_URL", "BETTER_AUTH_SECRET", "AUTH_ISSUER", "AUTH_AUDIENCE" } do
        assert.are.same(fe_env[k], e[k], k)
      end
      assert.are.equal("Never", job.spec.template.spec.restartPolicy)
      assert.is_nil(named(default, "Job", "todo-todo-chatbot-frontend-migrate"))
    end)

    it("lets the todo-host pods reach the JWKS and the front end reach api", function()
      local fe_in = named(doks, "NetworkPolicy", "todo-todo-chatbot-frontend-ingress")
      local from_hosts
      for _, rule in ipairs(fe_in.spec.ingress) do
        for _, peer in ipairs(rule.from) do
          if peer.podSelector and peer.podSelector.matchLabels["todo-chatbot/host"] == "true" then
            from_hosts = rule
          end
        end
      end
      assert.is_truthy(from_hosts, "todo-host pods may not reach the front end")
      assert.are.equal(3000, from_hosts.ports[1].port)
      -- every todo-host pod carries the label that rule selects
      for _, name in ipairs(SERVICES) do
        local labels = named(doks, "Deployment", "todo-todo-chatbot-" .. name).spec.template.metadata.labels
        assert.are.equal("true", labels["todo-chatbot/host"], name)
      end
      local api_in = named(doks, "NetworkPolicy", "todo-todo-chatbot-api-from-frontend")
      assert.is_truthy(api_in, "the front end may not reach api")
      assert.are.equal("api", api_in.spec.podSelector.matchLabels["app.kubernetes.io/component"])
      local from = api_in.spec.ingress[1].from[1].podSelector.matchLabels
      assert.are.equal("frontend", from["app.kubernetes.io/component"])
      assert.are.equal(8080, api_in.spec.ingress[1].ports[1].port)
      -- and the release's egress lets both go out to release pods
      local egress = named(doks, "NetworkPolicy", "todo-todo-chatbot-egress")
      local to_release = false
      for _, rule in ipairs(egress.spec.egress) do
        for _, peer in ipairs(rule.to or {}) do
          local sel = peer.podSelector and peer.podSelector.matchLabels
          if sel and sel["app.kubernetes.io/instance"] == "todo" and not rule.ports then
            to_release = true
          end
        end
      end
      assert.is_true(to_release)
    end)

    it("refuses frontend.enabled without the api service it proxies to or a public URL", function()
      local out, ok = h.sh(h.sh_quote(dir .. "/helm") .. " template todo " .. CHART ..
        " --kube-version 1.30.0 --set frontend.enabled=true --set ingress.host=x.test" ..
        " --set services.api.enabled=false")
      assert.is_falsy(ok)
      assert.matches("needs services.api.enabled", out)
      -- and without a public URL (BETTER_AUTH_URL, the issuer, the /ws origin), ingress or not
      out, ok = h.sh(h.sh_quote(dir .. "/helm") .. " template todo " .. CHART ..
        " --kube-version 1.30.0 --set frontend.enabled=true --set ingress.enabled=false")
      assert.is_falsy(ok)
      assert.matches("needs frontend.publicUrl or ingress.host", out)
    end)
  end)
end)

-- connlog gateway: adapts vendor-shaped REST calls around the gRPC-JSON
-- transcoder. Native gRPC passes untouched.
--
-- Request (before the transcoder):
--   * Every path segment and query parameter must percent-decode to UTF-8
--     text without NUL: otherwise a 400 naming the parameter (formatted per
--     shape by Envoy's local_reply_config), before anything parses it.
--   * A gRPC content type on a path that is not a gRPC method: gRPC
--     UNIMPLEMENTED (trailers-only), the gRPC caller's own format.
--   * Every internal header (HEADERS: x-connlog-*) a client sent is removed
--     first, on every request, gRPC or not.
--   * Meraki's Python SDK prepends its base URL to an absolute Link URL
--     (/api/v1http://host/api/v1/...): keep the inner path (less the public
--     base URL's path prefix); its body limit is the inner path's.
--   * A body larger than its path's limit (LIMITS): 413, in the shape's
--     format (local_reply_config), before anything parses it.
--   * Hand the backend the raw path (x-connlog-path), the gateway's own
--     origin (x-connlog-origin: rendered from the settings, or the local
--     address the connection came in on; never the Host header or
--     X-Forwarded-*) and the immediate peer's address (x-connlog-peer), so
--     it can validate every parameter and decide where absolute URLs point
--     (X-Forwarded-* only from a trusted proxy: connlog.core.origin).
--   * A vendor shape's path goes on to the transcoder without its query: the
--     raw path is the one source of the shape's query parameters (the
--     backend reads them, names the unknown, repeated or malformed ones in
--     the vendor's words, and reads Meraki's types[] arrays), so the
--     transcoder binds only the path's own fields.
-- Response (after the transcoder):
--   * x-connlog-http-status from the backend becomes the HTTP status (201,
--     400, 401, 404, 422, 429 ...), since the transcoder always answers 200;
--     an answer on a vendor shape's path that names none gets the shape's
--     success status (the backend leaves that one out: connlog.shapes.rest).
--   * gRPC bookkeeping headers are dropped from REST answers.

-- The REST shapes' path prefixes (longest first), error body templates and
-- success statuses: connlog.gateway.config fills them in from
-- connlog.shapes.registry.
local SHAPES = {}  -- rendered
-- The headers the gateway and the backends exchange (connlog.shapes.rest).
local HEADERS = {}  -- rendered
-- google.rpc.Code by HTTP status, for errors outside the vendor shapes
local RPC_CODE = {}  -- rendered
local UNAVAILABLE = ""  -- rendered
local RETRY_AFTER = ""  -- rendered
-- The gateway's own origin ("": the local address of the connection) and the
-- public base URL's path prefix.
local ORIGIN = ""  -- rendered
local BASE_PATH = ""  -- rendered
-- The largest request body of each REST path prefix (longest first; each
-- vendor shape's, the canonical /v1 bindings'), and of any other path.
local LIMITS = {}  -- rendered
local DEFAULT_LIMIT = 0  -- rendered

-- The shape a path belongs to: nil outside every vendor shape.
local function shape_of(path)
  for _, shape in ipairs(SHAPES) do
    if string.sub(path, 1, #shape.prefix) == shape.prefix then
      return shape
    end
  end
  return nil
end

-- The largest request body a path takes.
local function limit_of(path)
  for _, entry in ipairs(LIMITS) do
    if string.sub(path, 1, #entry.prefix) == entry.prefix then
      return entry.limit
    end
  end
  return DEFAULT_LIMIT
end

-- Whether the request's body is larger than its path takes: by its
-- Content-Length, else (chunked, or HTTP/2 without one) by the body itself,
-- which the buffer filter before this one has already read (up to the
-- path's limit and some room; more was a 413 of its own).
local function too_large(handle, headers, path)
  local limit = limit_of(path)
  local declared = tonumber(headers:get("content-length") or "")
  if declared then
    return declared > limit
  end
  local body = handle:body()
  return body ~= nil and body:length() > limit
end

-- The error body template of the shape a path belongs to (google.rpc.Status
-- JSON outside every vendor shape).
local function error_template(path)
  local shape = shape_of(path)
  return shape and shape.template or '{"code":@CODE@,"message":@MESSAGE@}'
end

local function json_string(text)
  local escaped = string.gsub(text, '[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

-- Whether s is valid UTF-8 without NUL (after percent-decoding).
local function valid_text(s)
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    if c == 0 then
      return false
    elseif c < 0x80 then
      i = i + 1
    else
      local need, low, high
      if c >= 0xC2 and c <= 0xDF then need, low, high = 1, 0x80, 0xBF
      elseif c == 0xE0 then need, low, high = 2, 0xA0, 0xBF
      elseif c == 0xED then need, low, high = 2, 0x80, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then need, low, high = 2, 0x80, 0xBF
      elseif c == 0xF0 then need, low, high = 3, 0x90, 0xBF
      elseif c >= 0xF1 and c <= 0xF3 then need, low, high = 3, 0x80, 0xBF
      elseif c == 0xF4 then need, low, high = 3, 0x80, 0x8F
      else return false end
      local c2 = string.byte(s, i + 1)
      if not c2 or c2 < low or c2 > high then return false end
      for k = 2, need do
        local ck = string.byte(s, i + k)
        if not ck or ck < 0x80 or ck > 0xBF then return false end
      end
      i = i + need + 1
    end
  end
  return true
end

local function decode(s)
  s = string.gsub(s, "+", " ")
  return (string.gsub(s, "%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

-- The first part of the path that is not text: nil, or a message naming it.
local function bad_part(path)
  local route, query = string.match(path, "^([^?]*)%??(.*)$")
  if not valid_text(decode(route)) then
    return "the request path is not valid UTF-8 text (or contains a NUL character)"
  end
  for pair in string.gmatch(query, "[^&]+") do
    local name, value = string.match(pair, "^([^=]*)=?(.*)$")
    if not valid_text(decode(name)) then
      return "a query parameter name is not valid UTF-8 text (or contains a NUL character)"
    end
    if not valid_text(decode(value)) then
      return "'" .. decode(name) .. "' is not valid UTF-8 text (or contains a NUL character)"
    end
  end
  return nil
end

local function is_grpc(headers)
  local content_type = headers:get("content-type") or ""
  return string.find(content_type, "application/grpc", 1, true) == 1
end

function envoy_on_request(handle)
  local headers = handle:headers()
  -- only the gateway (and the backends) set these
  for _, name in pairs(HEADERS) do
    headers:remove(name)
  end
  local path = headers:get(":path") or "/"
  if is_grpc(headers) then
    if not string.match(path, "^/[%w_.]+/[%w_]+$") then
      -- a gRPC caller gets a gRPC answer: Envoy turns 404 into UNIMPLEMENTED
      handle:respond({[":status"] = "404"}, "no gRPC method at " .. path .. " (a REST path takes JSON)")
    end
    return
  end
  local problem = bad_part(path)
  if problem then
    handle:respond({[":status"] = "400"}, problem)
    return
  end
  -- Headers travel on as gRPC metadata: drop what gRPC would refuse or act
  -- on (names outside its alphabet, its own grpc-* headers, binary "-bin"
  -- values) instead of letting the backend fail on them.
  local drop = {}
  for name, _ in pairs(headers) do
    if string.sub(name, 1, 1) ~= ":" and (string.find(name, "[^0-9a-z_.-]") or string.sub(name, 1, 5) == "grpc-"
        or string.sub(name, -4) == "-bin" or name == "te") then
      drop[#drop + 1] = name
    end
  end
  for _, name in ipairs(drop) do
    headers:remove(name)
  end
  local inner = string.match(path, "^/api/v1https?://[^/]+(/.*)$")
  if inner then
    if BASE_PATH ~= "" and string.sub(inner, 1, #BASE_PATH + 1) == BASE_PATH .. "/" then
      inner = string.sub(inner, #BASE_PATH + 1)
    end
    path = inner
  end
  local stream = handle:streamInfo()
  stream:dynamicMetadata():set("connlog", "path", path)
  headers:replace(HEADERS.path, path)
  headers:replace(HEADERS.origin, ORIGIN ~= "" and ORIGIN or ("http://" .. stream:downstreamLocalAddress()))
  headers:replace(HEADERS.peer, stream:downstreamDirectRemoteAddress())
  if shape_of(path) then
    path = string.match(path, "^[^?]*")
  end
  headers:replace(":path", path)
  if too_large(handle, headers, path) then
    -- formatted per shape by Envoy's local_reply_config, naming the limit
    handle:respond({[":status"] = "413"}, "the request body is too large")
  end
end

-- Replace the response body with the shape's error body (message: the
-- given text, or the body's own text when nil).
local function rewrite_error(handle, headers, code, message)
  local meta = handle:streamInfo():dynamicMetadata():get("connlog")
  local path = (meta and meta["path"]) or "/"
  headers:replace("content-type", "application/json")  -- (headers are out of reach once the body is read)
  local body = handle:body()
  if message == nil then
    message = body and body:getBytes(0, body:length()) or ""
    if not valid_text(message) then
      message = "the request is malformed"
    end
  end
  local json = string.gsub(error_template(path), "@(%u+)@", {
    STATUS = tostring(code), CODE = tostring(RPC_CODE[code] or 2), MESSAGE = json_string(message)})
  if body then
    body:setBytes(json)
  end
end

function envoy_on_response(handle)
  local headers = handle:headers()
  if handle:streamInfo():dynamicMetadata():get("connlog") == nil and not is_grpc(headers) then
    -- answered before this filter saw the request (Envoy's own /healthz,
    -- whose 503 means "not ready", not "retry later"): leave it as it is
    return
  end
  local status = headers:get(HEADERS.status)
  if status then
    headers:replace(":status", status)
    headers:remove(HEADERS.status)
  elseif headers:get(":status") == "200" and not is_grpc(headers) then
    local shape = shape_of(handle:streamInfo():dynamicMetadata():get("connlog")["path"])
    if shape and shape.success ~= 200 then
      status = tostring(shape.success)
      headers:replace(":status", status)
    end
  end
  if not is_grpc(headers) then
    headers:remove("grpc-status")
    headers:remove("grpc-message")
    headers:remove("grpc-accept-encoding")
    local code = tonumber(headers:get(":status") or "200") or 200
    if code >= 502 and code <= 504 and not status then
      -- not the backend's answer: Envoy (or the transcoder) reporting a
      -- service it cannot reach. Transient: 503 with Retry-After, no detail.
      headers:replace(":status", "503")
      if not headers:get("retry-after") then
        headers:replace("retry-after", RETRY_AFTER)
      end
      rewrite_error(handle, headers, 503, UNAVAILABLE)
    elseif code >= 400 and string.find(headers:get("content-type") or "", "text/plain", 1, true) == 1 then
      -- a plain-text error (the transcoder answers some malformed requests
      -- itself, past the local reply formatting): the shape's JSON instead
      rewrite_error(handle, headers, code, nil)
    end
  end
end

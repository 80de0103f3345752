-- connlog gateway: adapts vendor-shaped REST calls around the gRPC-JSON
-- transcoder. Native gRPC passes untouched.
--
-- Request (before the transcoder):
--   * Meraki's Python SDK prepends its base URL to an absolute Link URL
--     (/api/v1http://host/api/v1/...): keep the inner path.
--   * Arrays as Meraki's clients send them: types[]=a -> types=a.
--   * Hand the raw path and the caller's origin to the backend
--     (x-connlog-path, x-connlog-origin) so it can validate every parameter
--     and build absolute Link URLs; client-sent copies are overwritten.
-- Response (after the transcoder):
--   * x-connlog-http-status from the backend becomes the HTTP status (201,
--     400, 401, 404, 422, 429 ...), since the transcoder always answers 200.
--   * gRPC bookkeeping headers are dropped from REST answers.

local function is_grpc(headers)
  local content_type = headers:get("content-type") or ""
  return string.find(content_type, "application/grpc", 1, true) == 1
end

function envoy_on_request(handle)
  local headers = handle:headers()
  headers:remove("x-connlog-http-status")
  if is_grpc(headers) then
    headers:remove("x-connlog-path")
    headers:remove("x-connlog-origin")
    return
  end
  local path = headers:get(":path") or "/"
  local inner = string.match(path, "^/api/v1https?://[^/]+(/.*)$")
  if inner then
    path = inner
  end
  headers:replace("x-connlog-path", path)
  local scheme = headers:get("x-forwarded-proto") or headers:get(":scheme") or "http"
  headers:replace("x-connlog-origin", scheme .. "://" .. (headers:get(":authority") or "localhost"))
  path = string.gsub(path, "%%5[Bb]%%5[Dd]=", "=")
  path = string.gsub(path, "%[%]=", "=")
  headers:replace(":path", path)
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local status = headers:get("x-connlog-http-status")
  if status then
    headers:replace(":status", status)
    headers:remove("x-connlog-http-status")
  end
  if not is_grpc(headers) then
    headers:remove("grpc-status")
    headers:remove("grpc-message")
    headers:remove("grpc-accept-encoding")
  end
end

# Sourced by deploy/image-smoke.sh: the smoke test of a built image, and the sidecar manifest
# under `podman kube play`. Everything created here is removed on exit (trap).

POD="trustproxy-smoke-$$"
SMOKE_DIR=""

_cleanup_smoke() {
    podman pod rm -f "$POD" >/dev/null 2>&1 || true
    [ -n "$SMOKE_DIR" ] && rm -rf "$SMOKE_DIR"
}

_check() {  # _check "what" command...
    local what="$1"; shift
    if "$@"; then log "ok: $what"; else die "$what"; fi
}

_status() {  # _status URL [curl args...] -> HTTP status
    local url="$1"; shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@" "$url"
}

_chat() {  # _chat KEY BODY -> writes headers to $SMOKE_DIR/h, body to $SMOKE_DIR/b, prints status
    curl -s -D "$SMOKE_DIR/h" -o "$SMOKE_DIR/b" -w '%{http_code}' --max-time 60 \
        -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
        -d "$2" "http://127.0.0.1:$PORT/v1/chat/completions"
}

_policy_version() {
    tr -d '\r' < "$SMOKE_DIR/h" | sed -nE 's/^x-trustproxy-policy-version: (.*)$/\1/Ip'
}

smoke() {
    trap _cleanup_smoke EXIT
    SMOKE_DIR="$(mktemp -d "$WORK/smoke.XXXXXX")"
    chmod 755 "$SMOKE_DIR"
    cp -r "$ROOT/policies" "$SMOKE_DIR/policies"
    chmod -R a+rX "$SMOKE_DIR/policies"
    local key_hash
    key_hash="$(printf '%s' "$CLIENT_KEY" | sha256sum | cut -d' ' -f1)"

    podman pod create --name "$POD" -p "127.0.0.1:$PORT:8080" >/dev/null
    # the fake upstream, in the same pod (shared loopback), from the same image's Python
    podman run -d --pod "$POD" --name "$POD-upstream" --read-only --cap-drop ALL \
        --security-opt no-new-privileges -v "$ROOT/deploy/smoke/slow_upstream.py:/smoke/slow_upstream.py:ro" \
        --entrypoint python "$IMAGE" /smoke/slow_upstream.py >/dev/null
    local t0=$SECONDS
    podman run -d --pod "$POD" --name "$POD-proxy" \
        --read-only --tmpfs /tmp:rw,size=256m,mode=1777 --cap-drop ALL --security-opt no-new-privileges \
        -e TRUSTPROXY_CLIENTS="[{\"name\":\"smoke\",\"key_sha256\":\"$key_hash\",\"tenant\":\"smoke\"}]" \
        -e SLOW_UPSTREAM_KEY=unused-by-the-fake \
        -v "$SMOKE_DIR/policies:/etc/trustproxy/policies:ro" \
        -v "$ROOT/deploy/smoke/trustproxy.yaml:/etc/trustproxy/trustproxy.yaml:ro" \
        "$IMAGE" >/dev/null 2>"$SMOKE_DIR/run.err" \
        || { cat "$SMOKE_DIR/run.err" >&2; die "podman run failed"; }
    # (podman wants systemd for healthcheck timers; without it, it says so on stderr: harmless,
    # the HEALTHCHECK itself is run below)

    local up=""
    for _ in $(seq 1 180); do
        if [ "$(_status "http://127.0.0.1:$PORT/healthz")" = 200 ]; then up=1; break; fi
        if [ "$(podman inspect "$POD-proxy" --format '{{.State.Running}}')" != true ]; then break; fi
        sleep 0.5
    done
    [ -n "$up" ] || { podman logs "$POD-proxy" 2>&1 | tail -30 >&2; die "/healthz never answered"; }
    log "ok: /healthz answered $((SECONDS - t0)) s after podman run"
    for _ in $(seq 1 120); do
        [ "$(_status "http://127.0.0.1:$PORT/readyz")" = 200 ] && break
        sleep 0.5
    done
    _check "/readyz is 200" test "$(_status "http://127.0.0.1:$PORT/readyz")" = 200
    log "ready $((SECONDS - t0)) s after podman run"
    _check "the image declares a HEALTHCHECK" sh -c "podman image inspect '$IMAGE' --format '{{.Config.Healthcheck}}' | grep -q healthz"
    _check "the image's HEALTHCHECK passes" podman healthcheck run "$POD-proxy"

    local body='{"model":"echo","messages":[{"role":"user","content":"I am John Smith, mail john.smith@example.com"}]}'
    _check "chat without a key is 401" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$body" "http://127.0.0.1:$PORT/v1/chat/completions")" = 401
    _check "chat with the key is 200" test "$(_chat "$CLIENT_KEY" "$body")" = 200
    _check "the echo reply is restored" grep -q 'john.smith@example.com' "$SMOKE_DIR/b"
    _check "the entities header names what was masked" grep -qi '^x-trustproxy-entities: .*EMAIL_ADDRESS' "$SMOKE_DIR/h"
    local v1; v1="$(_policy_version)"

    local sbody='{"model":"echo","stream":true,"messages":[{"role":"user","content":"Hi, I am John Smith"}]}'
    _check "streamed chat is 200" test "$(_chat "$CLIENT_KEY" "$sbody")" = 200
    _check "the stream ends with [DONE]" grep -q '^data: \[DONE\]' "$SMOKE_DIR/b"
    _check "the stream restores the name" sh -c "grep '^data: {' '$SMOKE_DIR/b' | grep -q 'Smith'"

    # hot reload through the bind-mounted folder (edit in place, as a compliance officer would)
    sed -i -E 's/^threshold: ([0-9.]+)/threshold: 0.51   # smoke-test edit/' "$SMOKE_DIR/policies/default.yaml"
    grep -q 'smoke-test edit' "$SMOKE_DIR/policies/default.yaml" || die "could not edit the policy copy"
    local v2="$v1"
    for _ in $(seq 1 40); do
        _chat "$CLIENT_KEY" "$body" >/dev/null
        v2="$(_policy_version)"
        [ -n "$v2" ] && [ "$v2" != "$v1" ] && break
        sleep 0.5
    done
    _check "hot reload: policy version changed ($v1 -> $v2)" test -n "$v2" -a "$v2" != "$v1"

    # SIGTERM while a stream is in flight: the stream finishes, the process exits 0
    curl -s -N --max-time 60 -H "Authorization: Bearer $CLIENT_KEY" -H 'Content-Type: application/json' \
        -d '{"model":"slow","stream":true,"messages":[{"role":"user","content":"count slowly"}]}' \
        "http://127.0.0.1:$PORT/v1/chat/completions" > "$SMOKE_DIR/inflight" &
    local curl_pid=$!
    for _ in $(seq 1 40); do grep -q 'part 1' "$SMOKE_DIR/inflight" 2>/dev/null && break; sleep 0.25; done
    _check "the slow stream started" grep -q 'part 1' "$SMOKE_DIR/inflight"
    local t1=$SECONDS
    podman stop -t 40 "$POD-proxy" >/dev/null 2>&1
    wait "$curl_pid" || true
    _check "the in-flight stream finished with [DONE]" grep -q '^data: \[DONE\]' "$SMOKE_DIR/inflight"
    _check "the in-flight stream got every chunk" grep -q 'part 11' "$SMOKE_DIR/inflight"
    local code; code="$(podman inspect "$POD-proxy" --format '{{.State.ExitCode}}')"
    _check "SIGTERM exit code is 0 (was $code, $((SECONDS - t1)) s)" test "$code" = 0
    if podman logs "$POD-proxy" 2>&1 | grep -q 'John Smith\|john.smith@example.com'; then
        die "a planted value appeared in the container's logs"
    fi
    log "ok: no planted value in the container's logs"
    _cleanup_smoke
    trap - EXIT
    log "smoke test passed"
}

# deploy/compose.yaml, as written, under podman-compose: the example app's request succeeds
# through its sidecar (the app shares the proxy's network namespace and calls localhost:8080).
sidecar() {
    # podman-compose >= 1.1 (network_mode: service:..., ${VAR:-} interpolation): the test
    # venv's (requirements-test.lock), else $PODMAN_COMPOSE, else PATH's
    local pc="${PODMAN_COMPOSE:-}"
    [ -z "$pc" ] && [ -x "$ROOT/.venv/bin/podman-compose" ] && pc="$ROOT/.venv/bin/podman-compose"
    [ -z "$pc" ] && pc="$(command -v podman-compose || true)"
    [ -n "$pc" ] || die "podman-compose is not installed (pip install -r requirements-test.lock)"
    PC="$pc"
    local project="trustproxy-example"
    # the images compose names, from what was just built (compose's build sections need a
    # registry for their bases; here the app's base is the local test base)
    podman tag "$IMAGE" localhost/trustproxy:0.1.0
    podman build --pull=never --format docker --build-arg PYTHON_IMAGE="$BASE_IMAGE" \
        "${BUILD_MOUNTS[@]}" -t localhost/trustproxy-example-app:0.1.0 "$ROOT/deploy/example-app" \
        > "$WORK/app-build.log" 2>&1 || { tail -20 "$WORK/app-build.log" >&2; die "example app build failed"; }
    trap '_compose_down' EXIT
    (cd "$ROOT/deploy" && "$PC" -p "$project" -f compose.yaml up -d --no-build) > "$WORK/compose.log" 2>&1 \
        || { tail -30 "$WORK/compose.log" >&2; die "podman-compose up failed"; }
    local app="" code=""
    app="$(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | grep app | head -1)"
    [ -n "$app" ] || { tail -30 "$WORK/compose.log" >&2; die "the example app container was not created"; }
    for _ in $(seq 1 240); do
        [ "$(podman inspect "$app" --format '{{.State.Running}}')" = false ] && break
        sleep 1
    done
    code="$(podman inspect "$app" --format '{{.State.ExitCode}}')"
    podman logs "$app" > "$WORK/app.log" 2>&1 || true
    _check "compose: the example app exited 0 (was $code)" test "$code" = 0
    _check "compose: the app got the reply with its values restored" grep -q 'jane.doe@example.com' "$WORK/app.log"
    _compose_down
    trap - EXIT
    log "compose sidecar test passed"
}

_compose_down() {
    (cd "$ROOT/deploy" && "$PC" -p trustproxy-example -f compose.yaml down -t 30) >> "$WORK/compose.log" 2>&1 || true
}

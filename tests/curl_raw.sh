#!/usr/bin/env bash
# Drives the real curl against a running arrayd's /raw endpoint and compares the bytes with
# the data file itself.
#
# Usage: tests/curl_raw.sh RAW_URL FILE OFFSET
#   RAW_URL  http://HOST:PORT/v1/datasets/NAME/raw
#   FILE     the dataset's data file (the .npy file or the raw file of a descriptor)
#   OFFSET   where the array starts in FILE (META "offset"); the array runs to the end of FILE
#
# Prints one line per check and "N passed, M failed"; exits 1 when a check failed.
# tests/api/raw.rs runs it against a server it starts.
set -uo pipefail

url=${1:?RAW_URL}
file=${2:?FILE}
offset=${3:?OFFSET}
len=$(( $(stat -c %s "$file") - offset ))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# Bytes [start, start + count) of the array region of FILE.
expected() {
    dd if="$file" bs=65536 iflag=skip_bytes,count_bytes skip=$((offset + $1)) count="$2" status=none
}

# check NAME EXPECTED_STATUS START COUNT CURL_ARGS...: the body must be bytes [START, START+COUNT).
check() {
    local name=$1 want_status=$2 start=$3 count=$4
    shift 4
    local status
    status=$(curl -sS -o "$tmp/body" -w '%{http_code}' "$@" "$url") || { fail "$name" "curl exit $?"; return; }
    if [[ $status != "$want_status" ]]; then fail "$name" "status $status, want $want_status"; return; fi
    expected "$start" "$count" >"$tmp/want"
    if cmp -s "$tmp/body" "$tmp/want"; then ok "$name"; else fail "$name" "bytes differ"; fi
}

# status_is NAME EXPECTED_STATUS CURL_ARGS...
status_is() {
    local name=$1 want=$2
    shift 2
    local status
    status=$(curl -sS -o /dev/null -w '%{http_code}' "$@" "$url")
    if [[ $status == "$want" ]]; then ok "$name"; else fail "$name" "status $status, want $want"; fi
}

check "full body" 200 0 "$len"
check "-r 0-1023" 206 0 1024 -r 0-1023
check "-r -500" 206 $((len - 500)) 500 -r -500
check "-r 100-" 206 100 $((len - 100)) -r 100-
check "-r 0-0" 206 0 1 -r 0-0
check "-r past the end clamps" 206 $((len - 10)) 10 -r $((len - 10))-$((len + 1000))
check "overlapping ranges coalesce" 206 0 300 -r 0-199,100-299
check "malformed range is ignored" 200 0 "$len" -H 'Range: bytes=9-3'
status_is "-r LEN- is 416" 416 -r "$len-"

# Several ranges: rebuild the multipart body curl should receive and compare it byte for byte.
headers=$(curl -sS -D - -o "$tmp/body" -r 0-9,1000-1999,-16 "$url" | tr -d '\r')
boundary=$(sed -n 's/^content-type: multipart\/byteranges; boundary=//Ip' <<<"$headers")
if [[ -z $boundary ]]; then
    fail "multi-range" "no multipart boundary in: $headers"
else
    {
        printf -- '--%s\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-9/%d\r\n\r\n' "$boundary" "$len"
        expected 0 10
        printf -- '\r\n--%s\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 1000-1999/%d\r\n\r\n' "$boundary" "$len"
        expected 1000 1000
        printf -- '\r\n--%s\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes %d-%d/%d\r\n\r\n' "$boundary" $((len - 16)) $((len - 1)) "$len"
        expected $((len - 16)) 16
        printf -- '\r\n--%s--\r\n' "$boundary"
    } >"$tmp/want"
    if cmp -s "$tmp/body" "$tmp/want"; then ok "multi-range"; else fail "multi-range" "body differs"; fi
fi

# Validators: curl -z (If-Modified-Since), --etag-save/--etag-compare (If-None-Match), If-Range.
last_modified=$(curl -sSI "$url" | tr -d '\r' | sed -n 's/^last-modified: //Ip')
status_is "curl -z LAST_MODIFIED is 304" 304 -z "$last_modified"
check "curl -z 2001 is 200" 200 0 "$len" -z "Mon, 01 Jan 2001 00:00:00 GMT"
curl -sS -o /dev/null --etag-save "$tmp/etag" "$url"
status_is "--etag-compare is 304" 304 --etag-compare "$tmp/etag"
etag=$(cat "$tmp/etag")
check "If-Range: current ETag gives the range" 206 0 10 -r 0-9 -H "If-Range: $etag"
check "If-Range: stale ETag gives everything" 200 0 "$len" -r 0-9 -H 'If-Range: "stale"'

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]

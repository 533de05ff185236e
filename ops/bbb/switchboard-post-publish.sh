#!/bin/bash
# Switchboard post-publish hook for BigBlueButton servers.
#
# Packs a published recording as <recordID>.tar (<format>/<recordID>/...) and
# sends it to Switchboard, by HTTP upload (default) or rsync into the spool.
#
# Install (on every BBB server):
#   install -m 755 switchboard-post-publish.sh /usr/local/bigbluebutton/core/scripts/post_publish/
#   cat > /etc/default/switchboard-recordings <<CONF
#   SWITCHBOARD_URL=https://lb.example.org        # Switchboard's public URL
#   SWITCHBOARD_SERVER=bbb1.example.org           # this server's host as registered in Switchboard
#   # SWITCHBOARD_SPOOL=switchboard@lb.example.org:/var/lib/switchboard/spool   # rsync instead of upload
#   CONF
# and a wrapper post_publish script BBB runs (post_publish/*.rb run per recording):
#   /usr/local/bigbluebutton/core/scripts/post_publish/switchboard.rb:
#     #!/usr/bin/ruby
#     require 'optparse'
#     meeting_id = nil
#     OptionParser.new { |o| o.on('-m', '--meeting-id MEETING_ID') { |v| meeting_id = v } }.parse!
#     system('/usr/local/bigbluebutton/core/scripts/post_publish/switchboard-post-publish.sh', meeting_id) or exit 1
#
# Upload signature: hex(HMAC-SHA256(key = this server's BBB secret,
#   "switchboard-upload\n<SWITCHBOARD_SERVER>\n<recordID>\n<unix seconds>\n<archive sha256>")),
#   accepted once, see
#   api/src/recordings/upload.rs. The secret is read with `bbb-conf --secret`
#   (or SWITCHBOARD_SERVER_SECRET) and never printed.
set -euo pipefail

RECORD_ID="${1:?usage: $0 RECORD_ID}"
[[ "$RECORD_ID" =~ ^[0-9a-f]{40}-[0-9]{13}$ ]] || { echo "not a record id: $RECORD_ID" >&2; exit 2; }
[ -f /etc/default/switchboard-recordings ] && . /etc/default/switchboard-recordings
PUBLISHED="${PUBLISHED_DIR:-/var/bigbluebutton/published}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FORMATS=()
for dir in "$PUBLISHED"/*/"$RECORD_ID"; do
  [ -d "$dir" ] || continue
  FORMATS+=("$(basename "$(dirname "$dir")")/$RECORD_ID")
done
[ "${#FORMATS[@]}" -gt 0 ] || { echo "no published formats of $RECORD_ID" >&2; exit 0; }
ARCHIVE="$WORK/$RECORD_ID.tar"
tar --create --file "$ARCHIVE" --directory "$PUBLISHED" --no-xattrs "${FORMATS[@]}"

if [ -n "${SWITCHBOARD_SPOOL:-}" ]; then
  # rsync writes to a hidden temporary name and renames when complete; the
  # spool ignores hidden files, so a half-sent archive is never imported.
  rsync --timeout=600 --partial-dir=.rsync-partial "$ARCHIVE" "$SWITCHBOARD_SPOOL/"
  exit 0
fi

: "${SWITCHBOARD_URL:?set SWITCHBOARD_URL in /etc/default/switchboard-recordings}"
: "${SWITCHBOARD_SERVER:?set SWITCHBOARD_SERVER in /etc/default/switchboard-recordings}"
SECRET="${SWITCHBOARD_SERVER_SECRET:-$(bbb-conf --secret | awk '/Secret:/ {print $2}')}"
# Note: openssl takes the key as an argument, visible to local users in ps
# for a moment; run this on a BBB server without untrusted local users.
DIGEST="$(sha256sum "$ARCHIVE" | cut -d' ' -f1)"
sign() {
  printf 'switchboard-upload\n%s\n%s\n%s\n%s' "$SWITCHBOARD_SERVER" "$RECORD_ID" "$1" "$DIGEST" \
    | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1
}
for attempt in 1 2 3 4 5; do
  # Signed afresh for each attempt: a signature is valid once, for 5 minutes.
  TS="$(date +%s)"
  SIGNATURE="$(sign "$TS")"
  STATUS="$(curl --silent --show-error --output "$WORK/answer" --write-out '%{http_code}' \
    --request POST --data-binary "@$ARCHIVE" --header 'Content-Type: application/x-tar' \
    "${SWITCHBOARD_URL%/}/recordings/upload?server=${SWITCHBOARD_SERVER}&recordID=${RECORD_ID}&ts=${TS}&sha256=${DIGEST}&signature=${SIGNATURE}" || echo 000)"
  case "$STATUS" in
    200|202) exit 0 ;;
    401|413|422) echo "Switchboard refused $RECORD_ID ($STATUS): $(cat "$WORK/answer")" >&2; exit 1 ;;
  esac
  sleep $((attempt * 30))
done
echo "could not upload $RECORD_ID (last status $STATUS)" >&2
exit 1

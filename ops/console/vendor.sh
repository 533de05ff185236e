#!/usr/bin/env bash
# Refreshes the console's vendored libraries (api/console/vendor/) from the
# npm registry at the pinned versions below, with their licences, and
# prints their SHA-256 (the console embeds them into the binary; nothing is
# loaded from a CDN). Run after changing a version; commit the result.
set -euo pipefail
cd "$(dirname "$0")/../.."

HTMX_VERSION=2.0.11
UPLOT_VERSION=1.6.32

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@$HTMX_VERSION" "uplot@$UPLOT_VERSION" >/dev/null)
tar -xzf "$work/htmx.org-$HTMX_VERSION.tgz" -C "$work" --one-top-level=htmx
tar -xzf "$work/uplot-$UPLOT_VERSION.tgz" -C "$work" --one-top-level=uplot

out=api/console/vendor
mkdir -p "$out"
cp "$work/htmx/package/dist/htmx.min.js" "$out/htmx.min.js"
cp "$work/htmx/package/LICENSE" "$out/htmx.LICENSE"
cp "$work/uplot/package/dist/uPlot.iife.min.js" "$out/uPlot.iife.min.js"
cp "$work/uplot/package/dist/uPlot.min.css" "$out/uPlot.min.css"
cp "$work/uplot/package/LICENSE" "$out/uPlot.LICENSE"
cat > "$out/VERSIONS" <<VERSIONS
htmx.org $HTMX_VERSION (BSD Zero-Clause; htmx.LICENSE)
uplot $UPLOT_VERSION (MIT; uPlot.LICENSE)
VERSIONS
(cd "$out" && sha256sum htmx.min.js uPlot.iife.min.js uPlot.min.css)

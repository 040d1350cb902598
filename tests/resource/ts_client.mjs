// Drive an MCP server with the official TypeScript SDK client and a given bearer token.
// Usage: node ts_client.mjs <sdk-dir> <mcp-url> <token|-> <tool> [json-args]
// Prints one JSON line: {"tools": [...names], "result": <CallToolResult>} or {"error": "..."}.
const [sdkDir, url, token, tool, args] = process.argv.slice(2);
const { Client } = await import(`${sdkDir}/dist/esm/client/index.js`);
const { StreamableHTTPClientTransport } = await import(
  `${sdkDir}/dist/esm/client/streamableHttp.js`
);
const headers = token === "-" ? {} : { Authorization: `Bearer ${token}` };
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: "ostiary-ts-test", version: "0.0.0" });
try {
  await client.connect(transport);
  const listing = await client.listTools();
  const result = await client.callTool({ name: tool, arguments: JSON.parse(args ?? "{}") });
  console.log(JSON.stringify({ tools: listing.tools.map((t) => t.name), result }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.message ?? error), code: error?.code }));
} finally {
  await client.close().catch(() => {});
}

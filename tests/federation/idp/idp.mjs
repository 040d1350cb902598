// A real OpenID Provider for the federation tests: panva's oidc-provider on loopback.
//
// Configured from the environment: IDP_PORT, and IDP_CLIENTS, a JSON list of
// {client_id, client_secret, redirect_uris}. Logins use oidc-provider's built-in
// devInteractions pages (any login name, any password), which the tests drive with httpx.
// Access tokens live IDP_ACCESS_TOKEN_TTL seconds (default 3600); every code grant issues a
// refresh token. IDP_NODE_MODULES names the node_modules holding oidc-provider (ESM imports
// ignore NODE_PATH). Prints "ready <issuer>" on stdout once listening.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.IDP_NODE_MODULES;
const require = createRequire(join(modules, 'noop.js'));
const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')));

const port = Number(process.env.IDP_PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.IDP_CLIENTS ?? '[]').map((client) => ({
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...client,
}));

const profiles = {
  alice: { email: 'alice@idp.example', email_verified: true, name: 'Alice Upstream' },
  bob: { email: 'bob@idp.example', email_verified: true, name: 'Bob Upstream' },
};

const provider = new Provider(issuer, {
  clients,
  cookies: { keys: ['ostiary-federation-tests'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: true }, userinfo: { enabled: true } },
  pkce: { required: () => true },
  issueRefreshToken: async () => true,
  ttl: { AccessToken: Number(process.env.IDP_ACCESS_TOKEN_TTL ?? 3600) },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, ...(profiles[id] ?? {}) }),
  }),
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

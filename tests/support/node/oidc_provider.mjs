// A real OpenID provider on loopback for dockyard's sign-in tests: node-oidc-provider with its
// development login page (any login name, any password), as an institute's Keycloak would be.
//
//   node oidc_provider.mjs CONFIG.json
//
// CONFIG: {"port": 0, "clients": [{"client_id", "client_secret", "redirect_uris"}],
//          "wrong_audience_clients": ["client id", ...]}
// Prints one JSON line, {"issuer": "http://127.0.0.1:PORT"}, once it listens.
//
// A client named in "wrong_audience_clients" gets ID tokens that the provider signs with its
// real key but issues for another application ("aud": "another-application"): the token a
// malicious site could replay at dockyard after a user signed in there.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK } from 'jose';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signing = { ...(await exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };

const server = createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  jwks: { keys: [signing] },
  cookies: { keys: ['dockyard-tests-only-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  findAccount: async (ctx, id) => ({
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: `${id}@example.org`,
        email_verified: true,
        name: id.charAt(0).toUpperCase() + id.slice(1),
        preferred_username: id,
      };
    },
  }),
  // Consent is taken as given: the tests are about dockyard's side of the flow.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
});
provider.proxy = false;

const wrongAudience = new Set(config.wrong_audience_clients ?? []);
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  if (!wrongAudience.has(ctx.oidc?.client?.clientId)) return;
  const claims = { ...decodeJwt(ctx.body.id_token), aud: 'another-application', azp: 'another-application' };
  const header = decodeProtectedHeader(ctx.body.id_token);
  const key = await importJWK(signing, 'RS256');
  ctx.body = { ...ctx.body, id_token: await new SignJWT(claims).setProtectedHeader(header).sign(key) };
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));

// node-oidc-provider configured like sesame's benchmark tenant, for a side
// by side run of the load scenarios that need no password (all but userinfo,
// refresh and the fresh-login flow):
//
//   cd benches/load && npm install && PORT=3001 FORMAT=jwt node reference.mjs
//   LOAD_TARGET=http://127.0.0.1:3001 cargo bench --bench load
//
// FORMAT=jwt issues RS256 JWT access tokens (typ at+jwt), FORMAT=opaque
// reference tokens; tokens are kept in the provider's in-memory adapter.
// ALG=ES256 (or EdDSA) signs everything with a key of that algorithm
// instead of RSA: the counterpart of sesame's `es256` and `eddsa` tenants.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 3001);
const format = process.env.FORMAT || 'jwt';
const alg = process.env.ALG || 'RS256';
const pair = {
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: () => generateKeyPairSync('ed25519'),
}[alg];
if (!pair) throw new Error(`ALG must be RS256, ES256 or EdDSA, not ${alg}`);
const key = pair().privateKey.export({ format: 'jwk' });

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'api',
  id_token_signed_response_alg: alg,
});

// For the code flow with an SSO session: a confidential client like sesame's
// benchmark `web` client, signing in through the interaction below.
const web = {
  client_id: 'web',
  client_secret: 'web-secret',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: ['http://bench.test/cb'],
  id_token_signed_response_alg: alg,
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [client('cc'), client('rs'), web],
  pkce: { required: () => false },
  jwks: { keys: [{ ...key, alg, use: 'sig' }] },
  enabledJWA: { idTokenSigningAlgValues: [alg] },
  scopes: ['openid', 'api'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:sesame:bench',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        accessTokenFormat: format,
        jwt: { sign: { alg } },
      }),
    },
  },
});
provider.proxy = false;

// The interaction signs `alice` in and grants what was asked, without a
// form: the SSO flow scenario signs in once, then measures code flows over
// the session (sesame's harness signs in through its real form).
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/interaction/')) return next();
  const { params } = await provider.interactionDetails(ctx.req, ctx.res);
  const grant = new provider.Grant({ accountId: 'alice', clientId: params.client_id });
  grant.addOIDCScope(params.scope);
  const result = { login: { accountId: 'alice' }, consent: { grantId: await grant.save() } };
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result));
});
provider.listen(port, '127.0.0.1', () => console.log(`reference listening on http://127.0.0.1:${port} (${format}, ${alg})`));

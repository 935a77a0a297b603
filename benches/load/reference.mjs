// node-oidc-provider configured like sesame's benchmark tenant, for a side
// by side run of the simple load scenarios:
//
//   cd benches/load && npm install && PORT=3001 FORMAT=jwt node reference.mjs
//   LOAD_TARGET=http://127.0.0.1:3001 cargo bench --bench load
//
// FORMAT=jwt issues RS256 JWT access tokens (typ at+jwt), FORMAT=opaque
// reference tokens; tokens are kept in the provider's in-memory adapter.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 3001);
const format = process.env.FORMAT || 'jwt';
const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'api',
});

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [client('cc'), client('rs')],
  jwks: { keys: [{ ...key, alg: 'RS256', use: 'sig' }] },
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
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.proxy = false;
provider.listen(port, '127.0.0.1', () => console.log(`reference listening on http://127.0.0.1:${port} (${format})`));

// A local OpenID provider for the sign-in tests: oidc-provider on a loopback port, one
// confidential client, and static accounts. Its login page lists the accounts; choosing one
// signs in and grants the requested scopes at once.
//
// Usage: node provider.mjs <config.json>, where the file holds
//   {"port": 0, "client": {"client_id", "client_secret", "redirect_uris": [...]},
//    "accounts": {"<id>": {"email": "...", "email_verified": true}}}
// It prints one line {"issuer": "http://127.0.0.1:<port>"} once it listens.

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const accounts = config.accounts;

const escape = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function provider(issuer) {
  return new Provider(issuer, {
    clients: [
      {
        ...config.client,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    claims: { openid: ["sub"], email: ["email", "email_verified"] },
    cookies: { keys: ["local-test-provider-cookie-key"] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, id) {
      const account = accounts[id];
      if (account === undefined) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, ...account }),
      };
    },
  });
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => resolve(new URLSearchParams(body)));
    req.on("error", reject);
  });
}

async function interaction(oidc, req, res) {
  const details = await oidc.interactionDetails(req, res);
  if (req.method === "GET") {
    const choices = Object.keys(accounts)
      .map((id) => `<button name="account" value="${escape(id)}">${escape(id)}</button>`)
      .join("\n");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(
      `<!doctype html><title>Sign in</title><form method="post" action="/interaction/` +
        `${escape(details.uid)}">\n${choices}\n</form>`,
    );
    return;
  }
  const account = (await readForm(req)).get("account");
  if (accounts[account] === undefined) {
    res.writeHead(400, { "content-type": "text/plain" });
    res.end("unknown account");
    return;
  }
  const grant = new oidc.Grant({ accountId: account, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await oidc.interactionFinished(
    req,
    res,
    { login: { accountId: account }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const server = createServer();
server.listen(config.port, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const oidc = provider(issuer);
  const handle = oidc.callback();
  server.on("request", (req, res) => {
    if (req.url.startsWith("/interaction/")) {
      interaction(oidc, req, res).catch((error) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(error));
      });
    } else {
      handle(req, res);
    }
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.on("SIGTERM", () => server.close(() => process.exit(0)));

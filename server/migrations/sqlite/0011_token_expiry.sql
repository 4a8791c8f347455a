-- API tokens expire (auth.token_ttl, at most auth.token_max_ttl). Tokens made before
-- they did get 90 days from the upgrade, the default lifetime, rather than none.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
UPDATE api_tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+90 days')
 WHERE expires_at IS NULL;

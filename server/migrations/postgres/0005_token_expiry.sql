-- API tokens expire (auth.token_ttl, at most auth.token_max_ttl). Tokens made before
-- they did get 90 days from the upgrade, the default lifetime, rather than none.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
UPDATE api_tokens
   SET expires_at = to_char((now() + interval '90 days') AT TIME ZONE 'UTC',
                            'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
 WHERE expires_at IS NULL;

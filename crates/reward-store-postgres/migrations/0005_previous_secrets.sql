-- Every secret rotated out signs for its own 24 hours (at most five at a time), so a webhook keeps
-- a list of them instead of one: `previous_secrets`, a JSON array (as text, read by the server),
-- newest first, of {"secret": <stored form, sealed like `secret`>, "expires_at": <Unix millis>}.
-- The one previous secret a webhook had moves into it as it was stored (sealed, or plain from
-- before encryption: the server seals those when it starts, as it does `secret`).
ALTER TABLE webhooks ADD COLUMN previous_secrets TEXT NOT NULL DEFAULT '[]';
UPDATE webhooks
   SET previous_secrets = json_build_array(json_build_object(
           'secret', previous_secret, 'expires_at', previous_secret_expires_at))::text
 WHERE previous_secret IS NOT NULL AND previous_secret_expires_at IS NOT NULL;
ALTER TABLE webhooks DROP COLUMN previous_secret, DROP COLUMN previous_secret_expires_at;

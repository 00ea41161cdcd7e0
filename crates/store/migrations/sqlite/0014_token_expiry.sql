-- Tokens may expire, and remember when they were last used (at most a minute off).
ALTER TABLE tokens ADD COLUMN expires_ms INTEGER;
ALTER TABLE tokens ADD COLUMN last_used_ms INTEGER;

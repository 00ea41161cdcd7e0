-- How many times each scan job was started: a job that a crashing server keeps starting ends
-- failed after the third start instead of being claimed first forever.
ALTER TABLE scan_jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

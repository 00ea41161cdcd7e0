-- With --bus (NATS JetStream) batches travel on the bus and are kept here only once detected,
-- as the archive of raw events; the message id makes a redelivered batch one row. The
-- detector of a server without a bus reads only batches without one.
ALTER TABLE audit_batches ADD COLUMN bus_id TEXT;
CREATE UNIQUE INDEX audit_batches_bus_id ON audit_batches (bus_id);

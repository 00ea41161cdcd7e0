-- The images of pods seen created or replaced in each cluster's audit events, so that a
-- finding naming only a pod (an exec into it) can have that pod's images scanned.
CREATE TABLE pod_images (
    cluster_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    pod TEXT NOT NULL,
    images TEXT NOT NULL,
    seen_ms BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, namespace, pod)
);
CREATE INDEX pod_images_seen ON pod_images (seen_ms);

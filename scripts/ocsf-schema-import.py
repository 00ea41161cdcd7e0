#!/usr/bin/env python3
"""Writes the OCSF JSON schemas the tests check Osprey's OCSF events against.

    python3 -m venv /tmp/ocsf && /tmp/ocsf/bin/pip install py-ocsf-models==0.10.0
    /tmp/ocsf/bin/python scripts/ocsf-schema-import.py crates/testkit/schemas

OCSF publishes its schema as a dictionary of attributes, objects and classes (schema.ocsf.io),
not as JSON Schema, and no package on the registries this project reaches ships one. The
closest published machine-readable form is py-ocsf-models (Prowler, Apache-2.0), pydantic
models of the OCSF classes and objects; pydantic writes their JSON Schema. This script takes
those models as they are and changes only what is listed in PATCHES below, each change named
with the OCSF 1.3 text it follows, so that:

  * every object is closed (`additionalProperties: false`) — an attribute OCSF does not define
    at that place is an error, not silently accepted; free-form attributes (`data`, `unmapped`)
    stay open;
  * class, category and type ids are constants of the class (2004 Detection Finding, 2002
    Vulnerability Finding; type_uid = class_uid * 100 + activity_id);
  * attributes of OCSF 1.3 that the models lack are added, and requirements the models make
    stricter than OCSF are relaxed to OCSF's.

Vulnerability Finding (2002) is not in py-ocsf-models; it is assembled here from the models'
Finding base and VulnerabilityDetails, as OCSF defines it (`vulnerabilities` required).
"""

import json
import sys
from pathlib import Path
from typing import Optional

from pydantic import BaseModel
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.finding import Finding
from py_ocsf_models.objects.evidence_artifacts import EvidenceArtifacts
from py_ocsf_models.objects.resource_details import ResourceDetails
from py_ocsf_models.objects.url import URL
from py_ocsf_models.objects.user import User
from py_ocsf_models.objects.vulnerability_details import VulnerabilityDetails


class Actor(BaseModel):
    """OCSF 1.3 `actor` (only the attributes Osprey can fill)."""

    app_name: Optional[str] = None
    user: Optional[User] = None


class NetworkEndpoint(BaseModel):
    """OCSF 1.3 `network_endpoint` (address attributes)."""

    hostname: Optional[str] = None
    ip: Optional[str] = None
    name: Optional[str] = None
    port: Optional[int] = None
    uid: Optional[str] = None


class HttpRequest(BaseModel):
    """OCSF 1.3 `http_request` (the attributes an audit event carries)."""

    http_method: Optional[str] = None
    uid: Optional[str] = None
    url: Optional[URL] = None
    user_agent: Optional[str] = None


class Evidences(EvidenceArtifacts):
    """OCSF 1.3 `evidences` has actor, src_endpoint and http_request; the models comment them out."""

    actor: Optional[Actor] = None
    src_endpoint: Optional[NetworkEndpoint] = None
    http_request: Optional[HttpRequest] = None


class Detection(DetectionFinding):
    evidences: Optional[list[Evidences]] = None


class VulnerabilityFinding(Finding):
    """OCSF 1.3 class 2002: a Finding with the vulnerabilities it reports."""

    category_name: Optional[str] = None
    category_uid: int
    class_name: Optional[str] = None
    class_uid: int
    count: Optional[int] = None
    resources: Optional[list[ResourceDetails]] = None
    time: int
    type_name: Optional[str] = None
    type_uid: int
    vulnerabilities: list[VulnerabilityDetails]


# Changes to the models' definitions: (definition, what, value, why).
PATCHES = [
    ("VulnerabilityDetails", "add", ("fix_available", {"type": "boolean"}),
     "OCSF 1.3 vulnerability: fix_available (boolean), absent from the models"),
    ("FindingInformation", "add", ("product_uid", {"type": "string"}),
     "OCSF 1.3 finding_info: product_uid, the product that reported the finding"),
    ("CVE", "add", ("created_time_dt", {"type": "string", "format": "date-time"}),
     "OCSF 1.3 cve: created_time_dt, the Date/Time profile's form of created_time"),
    ("User", "required", [],
     "OCSF 1.3 user: at least one of account, name, uid; none is required on its own"),
    ("Analytic", "required", ["type_id"],
     "OCSF 1.3 analytic: only type_id is required (name, uid recommended)"),
    ("Technique", "required", [],
     "OCSF 1.3 technique: at least one of name, uid"),
]

OPEN = {"data", "unmapped"}


def close_objects(node):
    """additionalProperties: false on every object with listed properties."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for key, value in node.items():
            if key == "properties":
                for name, prop in value.items():
                    if name not in OPEN:
                        close_objects(prop)
            else:
                close_objects(value)
    elif isinstance(node, list):
        for item in node:
            close_objects(item)


def schema(model, title, class_uid, activities):
    doc = model.model_json_schema(mode="validation")
    defs = doc.setdefault("$defs", {})
    for name, what, value, _why in PATCHES:
        if name not in defs:
            continue
        if what == "add":
            defs[name]["properties"][value[0]] = value[1]
        elif what == "required":
            if value:
                defs[name]["required"] = value
            else:
                defs[name].pop("required", None)
    props = doc["properties"]
    props["class_uid"] = {"const": class_uid}
    props["category_uid"] = {"const": 2}
    props["category_name"] = {"const": "Findings"}
    props["type_uid"] = {"enum": [class_uid * 100 + a for a in activities]}
    props["activity_id"] = {"enum": activities}
    doc["required"] = sorted(set(doc.get("required", [])) | {"class_uid", "category_uid", "type_uid", "time"})
    close_objects(doc)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = title
    doc["$comment"] = "Generated by scripts/ocsf-schema-import.py from py-ocsf-models 0.10.0 (Apache-2.0); see that script for the changes."
    return doc


def main():
    out = Path(sys.argv[1])
    docs = {
        "ocsf-detection-finding.schema.json": schema(Detection, "OCSF Detection Finding (2004)", 2004, [0, 1, 2, 3, 99]),
        "ocsf-vulnerability-finding.schema.json": schema(VulnerabilityFinding, "OCSF Vulnerability Finding (2002)", 2002, [0, 1, 2, 3, 99]),
    }
    for name, doc in docs.items():
        (out / name).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(f"{out / name}: {len(doc['$defs'])} definitions")


if __name__ == "__main__":
    main()

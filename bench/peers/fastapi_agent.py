#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The seed's reference agent, for bench/request-path.

A stand-in for the Python InsTaG RunPod agent this project replaces: a
FastAPI app with POST /api/a2a that answers the umbrella's
agent_discovery_request with a fixed agent card (the seed's card: id
instag_runpod_agent, six capabilities, endpoints {"a2a": "/api/a2a"}), and
the seed's placeholder task_request operations.  No authentication, as in
the seed.

Run:  python3 bench/peers/fastapi_agent.py PORT
It serves plain HTTP (no TLS) on 127.0.0.1:PORT with uvicorn, one worker,
log level warning, no access log.  Unlike the seed it does not print every
message to stdout (that would only slow it down).

Needs the Debian packages python3-fastapi and python3-uvicorn.
"""

import sys
from typing import Any, Dict

import uvicorn
from fastapi import FastAPI

AGENT_CARD = {
    "id": "instag_runpod_agent",
    "name": "InsTaG RunPod Agent",
    "version": "0.1.0",
    "description": "Python agent for automating InsTaG on RunPod.",
    "capabilities": [
        "runpod_provision",
        "runpod_terminate",
        "instag_setup_environment",
        "instag_prepare_data",
        "instag_run_training",
        "instag_run_inference",
    ],
    "endpoints": {"a2a": "/api/a2a"},
}

app = FastAPI(
    title="InsTaG RunPod Agent",
    description="Reference peer for instag-agent's request-path benchmark.",
    version="0.1.0",
)


def _task_response(task_id: Any, **fields: Any) -> Dict[str, Any]:
    reply: Dict[str, Any] = {"type": "task_response", "task_id": task_id}
    reply.update(fields)
    return reply


@app.post("/api/a2a")
async def a2a(message: Dict[str, Any]) -> Dict[str, Any]:
    kind = message.get("type")
    payload = message.get("payload") or {}
    task_id = payload.get("task_id", "unknown_task")

    if kind == "agent_discovery_request":
        return {
            "type": "agent_discovery_response",
            "task_id": task_id,
            "agent_card": AGENT_CARD,
        }

    if kind == "task_request":
        operation = payload.get("operation")
        params = payload.get("params") or {}
        if operation == "provision_pod":
            result = {
                "status": "success",
                "message": f"Pod provisioning for {params.get('pod_name')} initiated.",
                "pod_id": "temp_pod_id_123",
            }
        elif operation == "terminate_pod":
            result = {
                "status": "success",
                "message": f"Pod termination for {params.get('pod_id')} initiated.",
            }
        elif operation == "instag_setup_environment":
            result = {
                "status": "success",
                "message": f"InsTaG environment setup for pod {params.get('pod_id')} initiated.",
            }
        else:
            return _task_response(task_id, status="error",
                                  error=f"Unknown operation: {operation}")
        return _task_response(task_id, status="completed", result=result)

    return _task_response(task_id, status="error",
                          error=f"Unsupported message type: {kind}")


@app.get("/")
async def root() -> Dict[str, str]:
    return {"message": "Welcome to the InsTaG RunPod Agent. "
                       "Use the /api/a2a endpoint for A2A communication."}


def main() -> int:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: fastapi_agent.py PORT", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    if not 0 < port < 65536:
        print(f"fastapi_agent.py: bad port {port}", file=sys.stderr)
        return 2
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1,
                log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The RPC adapters: XML-RPC (`xmlrpc.py`) and JSON-RPC 2.0 (`jsonrpc.py`)."""

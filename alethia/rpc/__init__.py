"""gRPC plumbing shared by every service: server bootstrap, the error mapping, auth, structs."""

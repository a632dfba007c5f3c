"""The policy server's side: requests to policy batches and back (policy_io), and the inference
thread that runs them (inference_worker)."""

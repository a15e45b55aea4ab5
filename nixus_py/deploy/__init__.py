"""Deploying: copy each node's closure over ssh and switch it with confirm-or-rollback."""

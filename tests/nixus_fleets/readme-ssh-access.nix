# Nixus's README example of SSH access, with the host and user keys it says to configure first.
{
  nodes.host1.host = "192.0.2.1";
  nodes.host2.host = "192.0.2.2";
  ssh.access.host1.keys.someHost1User.publicKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwJ9l3bN2cVxkQ8sY7tR6uP5oI4eW3qA2zS1xD0fC9v user@host1";
  ssh.access.host2.hostKeys.ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw";
  ssh.access.host1.keys.someHost1User.hasAccessTo.host2.someHost2User = true;
}

# Nixus's ssh.access: host keys and names in ssh.access, keys on a disabled node (a laptop)
# and on a machine that is no node at all (a phone), a key of a node granted on itself.
{
  nodes.web1 = { host = "root@192.0.2.11"; };  # Nixus's form of host: user@address
  nodes.web2 = { host = "192.0.2.12"; };
  nodes.laptop = { host = "192.0.2.99"; enable = false; };
  ssh.access = {
    web1.hostKeys.ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw";
    web2 = {
      hostKeys.ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEK6iZ8r9jS2bV1mJ9YuWY3fQxR7Z0t1JcYgk8mP8t7d";
      hostNames = [ "web2.example.org" "192.0.2.12" ];
      keys.backup = {
        publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMq0w4xvG9JH2m9c5V9h6w0aZkQ2n7m3Yc8oY1r4xY2b backup@web2";
        hasAccessTo.web1.backup = true;
        hasAccessTo.web2.root = true;
      };
    };
    laptop.keys.alice = {
      publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwJ9l3bN2cVxkQ8sY7tR6uP5oI4eW3qA2zS1xD0fC9v alice@laptop";
      hasAccessTo.web1.root = true;
      hasAccessTo.web2.alice = true;
    };
    phone.keys.bob = {
      publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1n2m3b4v5c6x7z8l9k0j1h2g3f4d5s6a7q8w9e0r1t bob@phone";
      hasAccessTo.web1.bob = true;
    };
  };
}

#!/bin/sh
# Vagrant 2.3's ansible provisioner with `playbook_command = "kiln-playbook"`, on Vagrant's
# docker provider, exactly as the README's drop-in section shows it: a private dockerd (its
# own socket, data root and bridge on 10.213.0.0/24, no iptables rules), an image imported
# from the test rootfs with sshd as its command, `vagrant up`, `vagrant provision` (must
# change nothing), `vagrant destroy`. Everything it starts is stopped on exit.
# Usage: dropin-vagrant.sh KILN_PLAYBOOK_DIR WORKDIR   (run as root; prints vagrant's output)
set -eu
bin=$1 work=$2
rootfs=${KILN_TEST_ROOTFS:-/var/cache/kiln-test/bookworm}
state=$work/docker
mkdir -p "$state"
export DOCKER_HOST="unix://$state/docker.sock"
export VAGRANT_HOME="$work/vagrant.d" VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_DEFAULT_PROVIDER=docker
export PATH="$bin:$PATH"

ip link del kiln-vagrant0 2>/dev/null || true
ip link add kiln-vagrant0 type bridge
ip addr add 10.213.0.1/24 dev kiln-vagrant0
ip link set kiln-vagrant0 up
dockerd -H "$DOCKER_HOST" --data-root "$state/data" --exec-root "$state/exec" \
    --pidfile "$state/docker.pid" --bridge=kiln-vagrant0 --iptables=false --ip6tables=false \
    >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
cleanup() {
    (cd "$work/project" 2>/dev/null && vagrant destroy -f >/dev/null 2>&1) || true
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    ip link del kiln-vagrant0 2>/dev/null || true
    for ns in "$state"/exec/netns/*; do umount "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
i=0
until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat "$work/dockerd.log" >&2; exit 1; }
    sleep 0.2
done

# The image: the test rootfs with a key and sshd, reached on the container's bridge address.
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
mkdir -p "$work/image/etc/kiln"
cp "$work/key.pub" "$work/image/etc/kiln/authorized_keys"
cat >"$work/image/etc/kiln/sshd_config" <<CONF
HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile /etc/kiln/authorized_keys
StrictModes no
PasswordAuthentication no
UsePAM no
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
tar -C "$rootfs" -c . | docker import \
    -c 'CMD ["/bin/sh", "-c", "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f /etc/kiln/sshd_config"]' \
    - kiln-dropin-base >/dev/null
cat >"$work/image/Dockerfile" <<'DOCKERFILE'
FROM kiln-dropin-base
COPY etc/kiln /etc/kiln
DOCKERFILE
docker build -q -t kiln-dropin "$work/image" >/dev/null

mkdir -p "$work/project"
cd "$work/project"
cat >site.yml <<'PLAY'
- hosts: all
  become: true
  tasks:
    - name: Mark the box
      copy:
        dest: /etc/provisioned-by
        content: "kiln-playbook for {{ inventory_hostname }}\n"
PLAY
cat >Vagrantfile <<VAGRANT
Vagrant.configure("2") do |config|
  config.vm.provider "docker" do |d|
    d.image = "kiln-dropin"
    d.has_ssh = true
  end
  config.ssh.username = "kiln"
  config.ssh.private_key_path = "$work/key"
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provision "ansible" do |ansible|
    ansible.playbook = "site.yml"
    ansible.playbook_command = "kiln-playbook"
    ansible.compatibility_mode = "2.0"
  end
end
VAGRANT
echo "== vagrant up"
vagrant up --provider=docker
echo "== vagrant provision"
vagrant provision
echo "== on the box"
docker exec "$(docker ps -q --filter ancestor=kiln-dropin | head -n 1)" cat /etc/provisioned-by

# The import id is the SSH address of the swarm's manager; the hosts, images
# and the hub and producer settings are read back from the swarm.
terraform import minibroker_swarm.main 10.0.0.10

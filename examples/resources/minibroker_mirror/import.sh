# The import id is MANAGER_ADDRESS/MIRROR_NAME.
terraform import minibroker_mirror.m0 10.0.0.10/m0

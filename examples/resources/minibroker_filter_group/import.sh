# The import id is MANAGER_ADDRESS/GROUP_NAME.
terraform import minibroker_filter_group.g0 10.0.0.10/g0

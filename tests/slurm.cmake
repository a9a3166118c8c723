# Sharding for job arrays and `neuromask merge`: shards equal a whole run
# (tests/test_shard_cli.sh), and a real single-node Slurm cluster started
# from Debian's packages as root runs the example job array, a merge job
# after it, and a killed and resubmitted task (tests/test_slurm.sh).
nm_add_script_test(test_shard_cli sh ${CMAKE_CURRENT_SOURCE_DIR}/test_shard_cli.sh)
set_property(TEST test_shard_cli APPEND PROPERTY LABELS asan)   # merge reads shards' files
nm_add_script_test(test_slurm sh ${CMAKE_CURRENT_SOURCE_DIR}/test_slurm.sh)
set_tests_properties(test_slurm PROPERTIES RESOURCE_LOCK slurm_cluster TIMEOUT 600)

# Conv and pooling operators against naive references and finite differences.
nm_add_c_test(test_ops_conv test_ops_conv.c)
# The op table refers to operators weakly, which does not pull them out of the
# static library: ask for them by name.
target_link_options(test_ops_conv PRIVATE
  -Wl,-u,nm_op_conv -Wl,-u,nm_op_maxpool -Wl,-u,nm_op_averagepool
  -Wl,-u,nm_op_globalaveragepool -Wl,-u,nm_op_globalmaxpool)

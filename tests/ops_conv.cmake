# Conv and pooling operators against naive references and finite differences.
nm_add_c_test(test_ops_conv test_ops_conv.c)

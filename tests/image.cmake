# Image files (PNG/JPEG) and preprocessing, compared with PIL + torchvision
# through tools/ref_preprocess.py (real images too when NEUROMASK_SHARED is set).
nm_add_c_test(test_image ${CMAKE_CURRENT_SOURCE_DIR}/test_image.c)

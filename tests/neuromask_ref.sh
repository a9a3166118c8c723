#!/bin/sh
# Reference data for the NeuroMask faithfulness tests (a CTest fixture):
#   neuromask_ref.sh resnet20|resnet18|resnet20_default|resnet18_default OUTDIR
# Skipped (77) without NEUROMASK_SHARED, which holds the model and images.
[ -n "$NEUROMASK_SHARED" ] || { echo "NEUROMASK_SHARED is not set: skipped"; exit 77; }
ref="/usr/bin/python3 ${NM_SOURCE_DIR:?}/tools/neuromask_ref.py"
case "$1" in
  resnet20) exec $ref --model "$NEUROMASK_SHARED/models/cifar10_resnet20.onnx" \
      --image "$NEUROMASK_SHARED/images/cifar10_test_jpg/cat_0000.jpg" --size 32 --preset cifar \
      --steps 200 --outdir "$2" ;;
  resnet18) exec $ref --torchvision resnet18 \
      --image "$NEUROMASK_SHARED/images/imagenet_val_227/ILSVRC2012_val_00000347.JPEG" --size 224 \
      --preset imagenet --steps 200 --outdir "$2" ;;
  resnet20_default) exec $ref --model "$NEUROMASK_SHARED/models/cifar10_resnet20.onnx" \
      --image "$NEUROMASK_SHARED/images/cifar10_test_jpg/cat_0000.jpg" --size 32 --preset default \
      --steps 40 --outdir "$2" ;;
  resnet18_default) exec $ref --torchvision resnet18 \
      --image "$NEUROMASK_SHARED/images/imagenet_val_227/ILSVRC2012_val_00000347.JPEG" --size 224 \
      --preset default --steps 8 --outdir "$2" ;;
esac
echo "usage: $0 resnet20|resnet18|resnet20_default|resnet18_default OUTDIR" >&2
exit 2

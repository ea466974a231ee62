// A small non-square network that uses every layer type and activation the ONNX exporter
// supports, with the shape corner cases darknet has (dilation, depthwise and grouped convs,
// stride_x != stride_y, odd maxpool padding, SPP, SE, sam, shortcuts between different channel
// counts, grouped routes over several inputs, reverse upsample, new_coords and scale_x_y heads).
export const ALL_LAYERS_CFG = `
[net]
width=64
height=48
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
dilation=2
activation=mish

[convolutional]
batch_normalize=1
groups=8
filters=8
size=3
stride=2
pad=1
activation=swish

[maxpool]
size=2
stride=2

[convolutional]
filters=12
size=1
stride=1
pad=0
activation=relu6

[maxpool]
stride=1
size=5

[route]
layers=-2

[maxpool]
stride=1
size=3

[route]
layers=5,7,4

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
activation=logistic

[avgpool]

[convolutional]
filters=16
size=1
stride=1
activation=relu

[convolutional]
filters=16
size=1
stride=1
activation=logistic

[scale_channels]
from=9

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=elu

[shortcut]
from=13
activation=linear

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
activation=selu

[shortcut]
from=15
activation=leaky

[convolutional]
batch_normalize=1
filters=24
size=1
stride=1
activation=gelu

[shortcut]
from=17
activation=tanh

[route]
layers=19,18
groups=2
group_id=1

[dropout]
probability=.15

[activation]
activation=hard_mish

[batchnorm]

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=plse

[upsample]
stride=2
scale=0.5

[route]
layers=-1,14

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
activation=ramp

[sam]
from=25

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
activation=stair

[local_avgpool]
size=3
stride=2
padding=1

[upsample]
stride=-2

[convolutional]
filters=24
size=1
stride=1
activation=logistic

[yolo]
mask=0,1,2
anchors=4,6, 8,10, 12,16, 16,20, 24,30, 40,36
classes=3
num=6
new_coords=1
scale_x_y=2.0

[route]
layers=26

[convolutional]
filters=24
size=1
stride=1
activation=linear

[yolo]
mask=3,4,5
anchors=4,6, 8,10, 12,16, 16,20, 24,30, 40,36
classes=3
num=6
scale_x_y=1.05
nms_kind=greedynms
beta_nms=0.6

[route]
layers=4

[maxpool]
size=2
stride_x=2
stride_y=1

[convolutional]
batch_normalize=1
filters=8
size=3
stride_x=1
stride_y=2
pad=1
activation=normalize_channels

[convolutional]
filters=8
size=1
stride=1
activation=normalize_channels_softmax

[convolutional]
filters=8
size=1
stride=1
activation=normalize_channels_softmax_maxval

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
activation=loggy

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
activation=relie

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
activation=lhtan

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
activation=revleaky

[convolutional]
batch_normalize=1
groups=2
filters=8
size=3
stride=1
pad=1
activation=hardtan

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
activation=relu
`;

package diary

import (
	"image"
	"image/color"
)

// ThumbnailSize is the box a thumbnail must fit in, in pixels.
const ThumbnailSize = 128

// FitSize returns the size of an image of w×h scaled to fit within box×box
// with its aspect ratio kept, rounding to the nearest pixel and never below
// one. Images that already fit are not enlarged: upscaling adds no detail,
// only bytes.
func FitSize(w, h, box int) (int, int) {
	if w <= box && h <= box {
		return w, h
	}
	if w >= h {
		return box, clamp1((h*box + w/2) / w)
	}
	return clamp1((w*box + h/2) / h), box
}

func clamp1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Thumbnail scales src down to fit within ThumbnailSize×ThumbnailSize.
//
// It is a box filter written out here rather than golang.org/x/image/draw:
// each destination pixel is the average of the block of source pixels it
// covers, which is what a good downscale needs (no aliasing, every source
// pixel counted once) and is all a thumbnail needs. It keeps the functions
// free of third-party dependencies, so there is nothing extra to pin, scan
// for vulnerabilities or ship in the WebAssembly module.
//
// Colours are averaged premultiplied by alpha, so fully transparent pixels,
// whatever colour they nominally have, do not bleed into their neighbours.
func Thumbnail(src image.Image) *image.RGBA {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	dw, dh := FitSize(sw, sh, ThumbnailSize)
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	if sw <= 0 || sh <= 0 {
		return dst
	}

	// col[sx] is the destination column source column sx falls in. Because
	// dw <= sw, every destination column receives at least one source column.
	col := make([]int, sw)
	for sx := range col {
		col[sx] = sx * dw / sw
	}
	// Per destination column of the row being filled: sums of 16-bit
	// premultiplied R, G, B, A, and the number of source pixels added.
	sum := make([]uint64, 4*dw)
	n := make([]uint64, dw)
	px := make([]uint32, 4*sw) // one source row, 16-bit premultiplied RGBA

	dy := 0
	for sy := 0; sy < sh; sy++ {
		readRow(src, b.Min.X, b.Min.Y+sy, px)
		for sx := 0; sx < sw; sx++ {
			dx := col[sx]
			s := sum[4*dx : 4*dx+4]
			p := px[4*sx : 4*sx+4]
			s[0] += uint64(p[0])
			s[1] += uint64(p[1])
			s[2] += uint64(p[2])
			s[3] += uint64(p[3])
			n[dx]++
		}
		// Flush when the next source row belongs to the next destination
		// row, or this was the last one.
		if sy+1 == sh || (sy+1)*dh/sh != dy {
			flushRow(dst, dy, sum, n)
			dy++
		}
	}
	return dst
}

// flushRow writes the averages of one destination row and resets the sums.
func flushRow(dst *image.RGBA, dy int, sum, n []uint64) {
	row := dst.Pix[dy*dst.Stride:]
	for dx := range n {
		if c := n[dx]; c > 0 {
			for i := 0; i < 4; i++ {
				// Round to nearest, then drop from 16 to 8 bits.
				row[4*dx+i] = uint8(((sum[4*dx+i] + c/2) / c) >> 8)
			}
		}
		n[dx] = 0
	}
	clear(sum)
}

// readRow fills px with row y of src as 16-bit premultiplied RGBA. The
// image types the PNG and JPEG decoders return most often are read directly
// from their pixel buffers; going through At for every pixel of a
// multi-megapixel photo would box each pixel in an interface and make the
// thumbnail several times slower. Other types take the general path.
func readRow(src image.Image, x0, y int, px []uint32) {
	w := len(px) / 4
	switch s := src.(type) {
	case *image.YCbCr:
		for i := 0; i < w; i++ {
			yi, ci := s.YOffset(x0+i, y), s.COffset(x0+i, y)
			r, g, b := color.YCbCrToRGB(s.Y[yi], s.Cb[ci], s.Cr[ci])
			px[4*i], px[4*i+1], px[4*i+2], px[4*i+3] = uint32(r)*0x101, uint32(g)*0x101, uint32(b)*0x101, 0xffff
		}
	case *image.Gray:
		row := s.Pix[s.PixOffset(x0, y):]
		for i := 0; i < w; i++ {
			v := uint32(row[i]) * 0x101
			px[4*i], px[4*i+1], px[4*i+2], px[4*i+3] = v, v, v, 0xffff
		}
	case *image.RGBA: // already premultiplied
		row := s.Pix[s.PixOffset(x0, y):]
		for i := 0; i < 4*w; i++ {
			px[i] = uint32(row[i]) * 0x101
		}
	case *image.NRGBA:
		row := s.Pix[s.PixOffset(x0, y):]
		for i := 0; i < w; i++ {
			a := uint32(row[4*i+3]) * 0x101
			for c := 0; c < 3; c++ {
				px[4*i+c] = uint32(row[4*i+c]) * 0x101 * a / 0xffff
			}
			px[4*i+3] = a
		}
	default:
		for i := 0; i < w; i++ {
			px[4*i], px[4*i+1], px[4*i+2], px[4*i+3] = src.At(x0+i, y).RGBA()
		}
	}
}

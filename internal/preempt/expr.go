package preempt

// expr copies one expression (a function body, or a constant expression)
// from r to out up to and including its final end, rewriting function
// indices, checking global indices, and, in a function body, inserting a
// countdown after every loop opcode.
//
// Every instruction's immediates are decoded so the walk never mistakes an
// immediate for an opcode; an opcode outside the features the engine
// supports (core 2.0 with SIMD, tail calls, threads) is refused rather
// than guessed at.
func (rw *rewriter) expr(r *reader, out []byte, body bool) ([]byte, error) {
	depth := 0
	for {
		start := r.pos
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch {
		case op == 0x0B: // end
			out = append(out, op)
			if depth == 0 {
				return out, nil
			}
			depth--
			continue
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			if err := r.skipBlockType(); err != nil {
				return nil, err
			}
			depth++
			out = append(out, r.b[start:r.pos]...)
			if op == 0x03 && body {
				out = rw.appendCountdown(out)
			}
			continue
		case op == 0x10 || op == 0x12 || op == 0xD2: // call, return_call, ref.func
			f, err := r.u32()
			if err != nil {
				return nil, err
			}
			if f, err = rw.funcIndex(f); err != nil {
				return nil, err
			}
			out = append(out, op)
			out = appendU32(out, f)
			continue
		case op == 0x23 || op == 0x24: // global.get, global.set
			g, err := r.u32()
			if err != nil {
				return nil, err
			}
			if g >= rw.oldGlobals {
				return nil, invalidf("global index %d out of range", g)
			}
		default:
			if err := skipImmediates(r, op); err != nil {
				return nil, err
			}
		}
		out = append(out, r.b[start:r.pos]...)
	}
}

// skipImmediates moves r past the immediates of op, which has none of the
// indices the rewrite changes.
func skipImmediates(r *reader, op byte) error {
	switch {
	case op <= 0x01, op == 0x05, op == 0x0F, op == 0x1A, op == 0x1B, op == 0xD1,
		op >= 0x45 && op <= 0xC4: // no immediates
		return nil
	case op == 0x0C || op == 0x0D: // br, br_if
		_, err := r.u32()
		return err
	case op == 0x0E: // br_table
		n, err := r.u32()
		if err != nil {
			return err
		}
		for range uint64(n) + 1 {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		return r.skipU32s(2)
	case op == 0x1C: // select t*
		n, err := r.u32()
		if err != nil {
			return err
		}
		_, err = r.bytes(int(min(n, 1<<20)))
		return err
	case op >= 0x20 && op <= 0x22, op == 0x25, op == 0x26: // locals, table.get/set
		_, err := r.u32()
		return err
	case op >= 0x28 && op <= 0x3E: // loads and stores
		return r.skipMemarg()
	case op == 0x3F || op == 0x40: // memory.size, memory.grow
		_, err := r.u32()
		return err
	case op == 0x41:
		return r.skipLEB(5)
	case op == 0x42:
		return r.skipLEB(10)
	case op == 0x43:
		_, err := r.bytes(4)
		return err
	case op == 0x44:
		_, err := r.bytes(8)
		return err
	case op == 0xD0: // ref.null heap type
		return r.skipLEB(5)
	case op == 0xFC:
		return skipMisc(r)
	case op == 0xFD:
		return skipSIMD(r)
	case op == 0xFE:
		return skipAtomic(r)
	}
	return invalidf("unsupported opcode 0x%02x", op)
}

// skipMisc: saturating truncations, bulk memory and table instructions.
func skipMisc(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 7:
		return nil
	case sub == 8 || sub == 10 || sub == 12 || sub == 14: // memory.init, memory.copy, table.init, table.copy
		return r.skipU32s(2)
	case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		return r.skipU32s(1)
	}
	return invalidf("unsupported opcode 0xfc %d", sub)
}

// skipSIMD: fixed-width SIMD and relaxed SIMD.
func skipSIMD(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads, stores, load_zero
		return r.skipMemarg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		_, err := r.bytes(16)
		return err
	case sub >= 21 && sub <= 34: // extract and replace lane
		_, err := r.byte()
		return err
	case sub >= 84 && sub <= 91: // load and store lane
		if err := r.skipMemarg(); err != nil {
			return err
		}
		_, err := r.byte()
		return err
	case sub <= 0x113:
		return nil
	}
	return invalidf("unsupported opcode 0xfd %d", sub)
}

// skipAtomic: the threads proposal.
func skipAtomic(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub == 3: // atomic.fence
		_, err := r.byte()
		return err
	case sub <= 2, sub >= 0x10 && sub <= 0x4E:
		return r.skipMemarg()
	}
	return invalidf("unsupported opcode 0xfe %d", sub)
}

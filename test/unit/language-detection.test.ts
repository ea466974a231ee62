// The rule that gives a .cfg file the `darknet` language: its first section is [net]/[network].
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { firstSectionIsNet, isDarknetCfg } from '../../client/languageDetection';
import { CFG_DIR, NEEDS_CORPUS } from './lsp-harness';

describe('language detection', () => {
  test('a .cfg starting with [net] or [network] is darknet', () => {
    assert.equal(isDarknetCfg('/m/yolov3.cfg', '[net]\nbatch=1\n'), true);
    assert.equal(isDarknetCfg('yolo.cfg', '[network]\nwidth=416\n'), true);
    assert.equal(isDarknetCfg('C:\\models\\YOLO.CFG', '[net]\n'), true, 'extension case does not matter');
  });

  test('blank lines, # and ; comments, whitespace, CRLF and a BOM may come first', () => {
    assert.equal(isDarknetCfg('a.cfg', '\n\n# Yolo v4\n; trained on VOC\n   \n[net]\n'), true);
    assert.equal(isDarknetCfg('a.cfg', '\r\n# x\r\n[net]\r\nwidth=416\r\n'), true);
    assert.equal(isDarknetCfg('a.cfg', '\ufeff[net]\n'), true);
    assert.equal(isDarknetCfg('a.cfg', '  [ net ]  \n'), true, 'darknet strips all whitespace');
    assert.equal(isDarknetCfg('a.cfg', '\t[net]# comment\n'), true);
  });

  test('setup.cfg, tox.cfg and other INI files are left alone', () => {
    assert.equal(isDarknetCfg('setup.cfg', '[metadata]\nname = darkslim\n\n[options]\npackages = find:\n'), false);
    assert.equal(isDarknetCfg('tox.cfg', '[tox]\nenvlist = py311\n'), false);
    assert.equal(isDarknetCfg('a.cfg', 'key=value\n[net]\n'), false, 'a key before any section');
    assert.equal(isDarknetCfg('a.cfg', '[convolutional]\n[net]\n'), false, '[net] must be the first section');
    assert.equal(isDarknetCfg('a.cfg', ''), false);
    assert.equal(isDarknetCfg('a.cfg', '[NET]\n'), false, 'darknet section names are case-sensitive');
    assert.equal(isDarknetCfg('a.cfg', '[netx]\n'), false);
    assert.equal(isDarknetCfg('a.cfg', '[network_settings]\n'), false);
  });

  test('only .cfg files', () => {
    assert.equal(isDarknetCfg('yolov3.ini', '[net]\n'), false);
    assert.equal(isDarknetCfg('yolov3.cfg.bak', '[net]\n'), false);
    assert.equal(isDarknetCfg('net.txt', '[net]\n'), false);
  });

  test('the first section must appear within the first 64 KiB', () => {
    assert.equal(firstSectionIsNet(`${'#'.repeat(70_000)}\n[net]\n`), false);
    assert.equal(firstSectionIsNet(`${'# comment\n'.repeat(1000)}[net]\n`), true);
  });

  test('every network cfg of the corpus is darknet; its .data files are not', { skip: NEEDS_CORPUS }, () => {
    const cfgs = readdirSync(CFG_DIR).filter((f) => f.endsWith('.cfg'));
    assert.ok(cfgs.length > 80);
    for (const f of cfgs) assert.equal(isDarknetCfg(f, readFileSync(join(CFG_DIR, f), 'utf8')), true, f);
    const data = join(CFG_DIR, '_non_cfg', 'coco.data');
    assert.equal(isDarknetCfg('coco.cfg', readFileSync(data, 'utf8')), false, 'same text under a .cfg name: no [net]');
  });
});

//! Fuzzes GGUF parsing and validation: any input must give `Ok` or `Err`, never a panic,
//! a hang or an allocation beyond the input's size; accepted files must have every tensor
//! readable in bounds.
#![no_main]

use fennec_core::gguf::GgufFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = GgufFile::from_vec(data.to_vec()) {
        for info in file.tensor_infos() {
            let view = file.tensor(&info.name).expect("listed tensor is present");
            assert_eq!(view.data.len() as u64, info.size);
        }
        let md = file.metadata();
        for (key, _) in md.iter() {
            let _ = md.get_u32(key);
            let _ = md.get_str(key);
            let _ = md.get_array_of::<String>(key);
        }
    }
});
